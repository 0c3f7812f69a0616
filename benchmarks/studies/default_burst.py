"""Issue 32's first observation: 32 concurrent chat requests with default options (8 each of
greedy, beam, mcts and best_of_n; nothing else set) against two `vllm serve` replicas behind
Deliberate in remote mode. How many are answered, and how many refused with 429?

    python -m benchmarks.studies.default_burst [--checkout DIR] --out results/default_burst.json

`--checkout` names the checkout whose Deliberate answers (another commit's worktree for a
before/after); the replicas are this checkout's `vllm serve` of the demo base.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time
from pathlib import Path

import httpx

from tests.servers import free_port, replica_args, replica_env, running_server

STRATEGIES = ("greedy", "beam", "mcts", "best_of_n")
MODEL = Path(__file__).resolve().parents[2] / "models" / "demo" / "base"


async def burst(url: str, per_strategy: int) -> dict:
    async def one(http: httpx.AsyncClient, strategy: str, i: int) -> tuple[str, int]:
        body = {"model": "demo", "messages": [{"role": "user",
                                               "content": f"Compute: {17 + i}*3+{29 + i}*2-11"}],
                "reasoning": {"strategy": strategy}}
        r = await http.post("/v1/chat/completions", json=body)
        return strategy, r.status_code

    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        started = time.monotonic()
        got = await asyncio.gather(*(one(http, s, i) for s in STRATEGIES
                                     for i in range(per_strategy)))
    counts = collections.Counter(f"{strategy} {status}" for strategy, status in got)
    return {"wall_s": round(time.monotonic() - started, 1), "statuses": dict(sorted(counts.items()))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.default_burst",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=".", help="the checkout whose Deliberate answers")
    parser.add_argument("--per-strategy", type=int, default=8)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logs = Path(args.out).parent / "logs" / Path(args.out).stem  # ignored by git
    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(2):
            port = free_port()
            urls.append(stack.enter_context(running_server(
                replica_args(MODEL, port, extra=["--scheduling-policy", "priority"]), port,
                logs / f"replica-{port}.log", env=replica_env(), timeout_s=600)))
        port = free_port()
        command = ["-m", "server", "--engine", "remote", "--model", str(MODEL), "--port",
                   str(port), *[flag for url in urls for flag in ("--upstream", url)]]
        url = stack.enter_context(running_server(command, port, logs / "deliberate.log",
                                                 timeout_s=600, cwd=Path(args.checkout)))
        result = {"checkout": str(Path(args.checkout).resolve()), **asyncio.run(
            burst(url, args.per_strategy))}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
