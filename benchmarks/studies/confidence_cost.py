"""What asking the engine for top-k logprobs on every generated token costs (issue 33's
confidence signals): the same requests on one server that asks for none (`--confidence-top-k
0`) and on one that asks for the top-5 (the default), through the HTTP API.

    python -m benchmarks.studies.confidence_cost [--per-level 3] [--countdown 24] [--rounds 2]

Greedy (a single pass) and beam (width 3, the server's default search verifiers) on the same
fresh problems (seed stream 600_000+, the confidence calibration's), each side run `--rounds`
times alternately on the local engine, the servers one at a time. Reports each side's wall time
and generated tokens per second. Writes benchmarks/studies/results/confidence_cost.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import run_config
from benchmarks.harness.problems import CONFIDENCE_SEED, add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
CONFIGS = {"greedy": {"strategy": "greedy"}, "beam/3": {"strategy": "beam", "beam_width": 3}}
SIDES = {"no logprobs": "0", "top-5 logprobs": "5"}


async def measure(args: argparse.Namespace, top_k: str, problems) -> dict[str, dict]:
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--log-level", "warning", "--confidence-top-k", top_k]
    out: dict[str, dict] = {}
    with running_server(command, port, RESULTS / "logs" / f"confidence-cost-{top_k}.log") as url:
        for name, reasoning in CONFIGS.items():
            # once unmeasured: the first requests of a server pay for warming up
            await run_config(url, problems[:4], name, {**reasoning, "seed": 1}, "-",
                             args.concurrency)
            rows, info = await run_config(url, problems, name, {**reasoning, "seed": 1}, "-",
                                          args.concurrency)
            tokens = sum(o.completion_tokens for o in rows)
            out[name] = {"wall_s": info["wall_s"], "tokens": tokens,
                         "tokens_per_s": round(tokens / info["wall_s"], 1),
                         "accuracy": round(sum(o.correct for o in rows) / len(rows), 4)}
            print(f"top-k {top_k} {name:7s} {out[name]}", flush=True)
    return out


def report(runs: dict[str, list[dict]], args: argparse.Namespace, n: int) -> str:
    lines = ["# What the confidence signals' logprobs cost", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC: `python -m "
             f"benchmarks.studies.confidence_cost --per-level {args.per_level} --countdown "
             f"{args.countdown} --rounds {args.rounds} --concurrency {args.concurrency}`. "
             f"{n} problems per config, the same on both sides; local engine, demo model, "
             "this machine's 2 shared CPUs (medians of the rounds; the tokens are equal on "
             "both sides when the seeds make the same samples).", "",
             "| config | side | wall s | tokens | tokens/s | accuracy |",
             "|---|---|---:|---:|---:|---:|"]
    for name in CONFIGS:
        for side in SIDES:
            rows = [r[name] for r in runs[side]]
            lines.append(f"| {name} | {side} | "
                         f"{statistics.median(r['wall_s'] for r in rows):.1f} | "
                         f"{statistics.median(r['tokens'] for r in rows):.0f} | "
                         f"{statistics.median(r['tokens_per_s'] for r in rows):.1f} | "
                         f"{statistics.median(r['accuracy'] for r in rows):.1%} |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    for _ in range(args.rounds):
        for side, top_k in SIDES.items():
            runs[side].append(await measure(args, top_k, problems))
    (RESULTS / "confidence_cost.json").write_text(json.dumps(runs, indent=1))
    text = report(runs, args, len(problems))
    (RESULTS / "confidence_cost.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.confidence_cost",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, CONFIDENCE_SEED)
    parser.set_defaults(per_level=3, countdown=24, concurrency=4)
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
