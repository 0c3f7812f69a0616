"""How MCTS should spend its budget: branching (`n_candidates`) against simulations.

    python -m benchmarks.studies.mcts_sweep [--per-level 30] [--countdown 120] [--concurrency 16]

Runs mcts (depth 5, rollout evaluation, learned verifiers prm x orm) on the router's calibration
problems (seed stream 800_000+, apart from the reasoning benchmark's held-out ones, so choosing
the defaults here does not tune them on the problems they are reported on), one configuration
after another against one server. The server's defaults (2 steps per expansion, 16 simulations)
were chosen from this table. Writes benchmarks/studies/results/mcts_sweep.md and mcts_sweep.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import LEARNED, Outcome, run_config
from benchmarks.harness.problems import CALIBRATION_SEED, add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
# (steps sampled per expansion, simulations)
GRID = [(3, 12), (2, 8), (2, 12), (2, 16), (2, 20), (2, 32), (1, 16)]


def summary(k: int, simulations: int, rows: list[Outcome], phase: dict) -> dict:
    def accuracy(keep) -> float:
        chosen = [o for o in rows if keep(o)]
        return round(sum(o.correct for o in chosen) / len(chosen), 4)

    countdown = [o for o in rows if o.task == "countdown"]
    return {"n_candidates": k, "simulations": simulations,
            "all": accuracy(lambda o: True),
            "hard": accuracy(lambda o: o.bucket in ("arith 6-8", "countdown")),
            "countdown": accuracy(lambda o: o.task == "countdown"),
            "tokens": round(statistics.fmean(o.completion_tokens for o in rows), 1),
            "countdown_tokens": round(statistics.fmean(o.completion_tokens for o in countdown), 1),
            "engine_calls": round(statistics.fmean(o.engine_calls for o in rows), 1),
            "wall_s": phase["wall_s"]}


def report(rows: list[dict], args: argparse.Namespace, n: int, wall: float) -> str:
    base = rows[0]
    lines = ["# MCTS: branching against simulations", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({platform.machine()}), {wall / 60:.1f} min in all. Command: `python -m "
             f"benchmarks.studies.mcts_sweep --per-level {args.per_level} "
             f"--countdown {args.countdown}`.",
             "",
             f"{n} calibration problems (seed stream {args.seed}+), mcts depth 5 with rollout "
             "evaluation and progressive widening, learned verifiers (prm x orm), seed 1. "
             "Tokens are `usage.completion_tokens` per request; the last column compares with "
             "the first row, the previous default.", "",
             "| n_candidates | simulations | all | hard | countdown | tokens | countdown tokens "
             "| engine calls | tokens vs first row |", "|---:" * 9 + "|"]
    for r in rows:
        lines.append(f"| {r['n_candidates']} | {r['simulations']} | {r['all']:.1%} | "
                     f"{r['hard']:.1%} | {r['countdown']:.1%} | {r['tokens']:.0f} | "
                     f"{r['countdown_tokens']:.0f} | {r['engine_calls']} | "
                     f"{r['tokens'] / base['tokens']:.2f}x |")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--log-level",
               "warning"]
    rows = []
    started = time.monotonic()
    with running_server(command, port, RESULTS / "logs" / "mcts-sweep-server.log") as url:
        for k, simulations in GRID:
            reasoning = {"strategy": "mcts", "max_depth": 5, "n_candidates": k,
                         "simulations": simulations, "verifiers": LEARNED, "seed": 1}
            outcomes, phase = await run_config(url, problems, f"mcts k{k} s{simulations}",
                                               reasoning, "learned", args.concurrency)
            rows.append(summary(k, simulations, outcomes, phase))
            print(json.dumps(rows[-1]), flush=True)
    wall = time.monotonic() - started
    (RESULTS / "mcts_sweep.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / "mcts_sweep.md").write_text(report(rows, args, len(problems), wall))
    print((RESULTS / "mcts_sweep.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.mcts_sweep",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, CALIBRATION_SEED)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
