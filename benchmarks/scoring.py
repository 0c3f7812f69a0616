"""What scoring costs: PRM and ORM latency per step batch, through POST /v1/verify.

    python -m benchmarks.scoring [--repeats 20]

For solution paths of 1, 4 and 8 steps (one path = one batch of its steps, scored by one
prompt-logprobs request for the PRM, one next-token request for the ORM), the median latency of
/v1/verify alone, and with 16 paths of 8 steps in flight at once (the engine batches them), the
throughput in steps/s. The demo model and adapters; `logic` (no model) for reference.
Writes benchmarks/results/scoring.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
PROMPT = "Compute: 48+17*3-29*2+11*4-6*7+3"
STEPS = ["17*3=51", "29*2=58", "11*4=44", "6*7=42", "48+51=99", "99-58=41", "41+44=85",
         "85-42=43"]
VERIFIERS = {"prm": {"prm": 1}, "orm": {"orm": 1}, "prm x orm": {"prm": 1, "orm": 1},
             "logic": {"logic": 1}}


async def verify(http: httpx.AsyncClient, steps: list[str], verifiers: dict) -> float:
    started = time.perf_counter()
    r = await http.post("/v1/verify", json={"prompt": PROMPT, "completion": "\n".join(steps),
                                            "verifiers": verifiers})
    r.raise_for_status()
    assert not r.json()["verifier_errors"], r.json()["verifier_errors"]
    return time.perf_counter() - started


async def measure(url: str, repeats: int) -> list[dict]:
    rows = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for name, verifiers in VERIFIERS.items():
            await verify(http, STEPS, verifiers)  # loads the adapters, warms up
            for n in (1, 4, 8):
                times = [await verify(http, STEPS[:n], verifiers) for _ in range(repeats)]
                rows.append({"verifiers": name, "steps": n, "concurrent": 1,
                             "median_ms": statistics.median(times) * 1e3,
                             "steps_per_s": n / statistics.median(times)})
            started = time.perf_counter()
            await asyncio.gather(*(verify(http, STEPS, verifiers) for _ in range(16)))
            wall = time.perf_counter() - started
            rows.append({"verifiers": name, "steps": 8, "concurrent": 16,
                         "median_ms": wall * 1e3, "steps_per_s": 16 * 8 / wall})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scoring",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--log-level", "warning"]
    with running_server(command, port, RESULTS / "logs" / "scoring-server.log") as url:
        rows = asyncio.run(measure(url, args.repeats))
    lines = ["# Scoring cost per step batch", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({platform.machine()}, CPU), `python -m benchmarks.scoring --repeats "
             f"{args.repeats}`. One `/v1/verify` request scores one path: all its steps are one "
             "batch. Latency is the median of the repeats (alone) or the wall time of 16 paths "
             "sent at once.", "",
             "| verifiers | steps in the batch | paths at once | latency ms | steps/s |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['verifiers']} | {r['steps']} | {r['concurrent']} | {r['median_ms']:.1f} | "
              f"{r['steps_per_s']:.0f} |" for r in rows]
    (RESULTS / "scoring.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
