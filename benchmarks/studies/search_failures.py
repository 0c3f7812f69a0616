"""Why a search misses: it never finished a right solution, or it found one and chose another.

    python -m benchmarks.studies.search_failures [--per-level 30] [--countdown 120] \\
        [--concurrency 16]

Runs best_of_n/16, beam/3 and mcts/5 on the hard bucket of `benchmarks.reasoning`'s held-out
problems (arithmetic with 6-8 operations, and countdown) with the search trace returned, under
the learned verifiers and under learned plus `logic`. Every finished path in a trace is checked
by the task's exact checker, and each problem counts as

- solved: the answer is right;
- selection: a right solution was among the finished paths, and the verifiers preferred a wrong one;
- search: no finished path was right, so no verifier could have picked a right answer.

Search failures call for better proposals or values (what to expand), selection failures for a
better judge of finished solutions. Writes benchmarks/studies/results/search_failures.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.chat import LEARNED, WITH_LOGIC, chat_request
from benchmarks.harness.problems import HELD_OUT_SEED, add_run_arguments, bucket_of, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
HARD = ("arith 6-8", "countdown")
CONFIGS: list[tuple[str, dict]] = [
    ("best_of_n/16", {"strategy": "best_of_n", "n_candidates": 16}),
    ("beam/3", {"strategy": "beam", "beam_width": 3}),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}),
]
SETTINGS = {"learned": LEARNED, "learned+logic": WITH_LOGIC}


def finished_paths(trace: list[dict]) -> list[str]:
    """The text of every finished path in a search trace (steps joined by newlines)."""
    nodes = {node["id"]: node for node in trace}
    paths = []
    for node in trace:
        if not node["final"] or node["parent"] is None:
            continue
        steps, at = [], node
        while at["parent"] is not None:
            steps.append(at["text"])
            at = nodes[at["parent"]]
        paths.append("\n".join(reversed(steps)))
    return paths


def classify(problem: Problem, answer: str, trace: list[dict]) -> tuple[str, int]:
    """("solved" | "selection" | "search", finished paths in the trace)."""
    task = get_task(problem.task)
    paths = finished_paths(trace)
    if task.check(problem, answer):
        return "solved", len(paths)
    found = any(task.check(problem, path) for path in paths)
    return ("selection" if found else "search"), len(paths)


async def ask(http: httpx.AsyncClient, problem: Problem, reasoning: dict) -> tuple[str, int]:
    r = await http.post("/v1/chat/completions",
                        json=chat_request(problem, {**reasoning, "return_trace": True}))
    r.raise_for_status()
    body = r.json()
    return classify(problem, body["choices"][0]["message"]["content"], body["reasoning"]["trace"])


def summary(config: str, setting: str, bucket: str,
            outcomes: list[tuple[str, int]]) -> dict:
    kinds = Counter(kind for kind, _ in outcomes)
    n = len(outcomes)
    return {"config": config, "verifiers": setting, "bucket": bucket, "n": n,
            **{kind: kinds[kind] for kind in ("solved", "selection", "search")},
            "finished_paths": round(sum(paths for _, paths in outcomes) / n, 1)}


def report(rows: list[dict], args: argparse.Namespace, wall: float) -> str:
    lines = ["# Why searches miss: search failures against selection failures", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({platform.machine()}), {wall / 60:.1f} min. Command: `python -m "
             f"benchmarks.studies.search_failures --per-level {args.per_level} --countdown "
             f"{args.countdown}`.", "",
             "The hard bucket of the reasoning benchmark's held-out problems (seed stream "
             f"{args.seed}+), seed 1. *selection*: a right solution was among the search's "
             "finished paths and a wrong one was returned; *search*: none of its finished paths "
             "was right. *reachable* = solved + selection: what a perfect judge of finished "
             "solutions would reach with the same search.", "",
             "| config | verifiers | bucket | n | solved | selection | search | reachable "
             "| finished paths |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        reachable = (r["solved"] + r["selection"]) / r["n"]
        lines.append(f"| {r['config']} | {r['verifiers']} | {r['bucket']} | {r['n']} | "
                     f"{r['solved'] / r['n']:.1%} | {r['selection']} | {r['search']} | "
                     f"{reachable:.1%} | {r['finished_paths']} |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    problems = [p for p in load_problems(args.per_level, args.countdown, args.seed)
                if bucket_of(p) in HARD]
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--max-n", "16",
               "--log-level", "warning"]
    gate = asyncio.Semaphore(args.concurrency)
    rows, started = [], time.monotonic()
    with running_server(command, port, RESULTS / "logs" / "search-failures-server.log") as url:
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            async def one(problem: Problem, reasoning: dict) -> tuple[str, int]:
                async with gate:
                    return await ask(http, problem, reasoning)

            for config, reasoning in CONFIGS:
                for setting, weights in SETTINGS.items():
                    outcomes = await asyncio.gather(*(
                        one(p, {**reasoning, "verifiers": weights, "seed": 1})
                        for p in problems))
                    for bucket in HARD:
                        chosen = [o for p, o in zip(problems, outcomes) if bucket_of(p) == bucket]
                        rows.append(summary(config, setting, bucket, chosen))
                        print(json.dumps(rows[-1]), flush=True)
    (RESULTS / "search_failures.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / "search_failures.md").write_text(report(rows, args, time.monotonic() - started))
    print((RESULTS / "search_failures.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.search_failures",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, HELD_OUT_SEED)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
