"""What limits step search on countdown: the learned verifiers, or the proposals?

    python -m benchmarks.studies.value_ceiling [--countdown 120] [--concurrency 16]

Runs the step searches on the held-out countdown problems of `benchmarks.reasoning` twice: with
the learned verifiers (prm x orm), and with them times an exact value function, `solvable`
(1 when a step is valid and the target can still be reached after it, else 0; the exact
solver of `training.tasks.countdown.still_solvable`). The second is a ceiling no learned
verifier can pass: what the same proposals reach when every dead end is recognised. The
verifier is a plugin of this module, installed for the benchmark's server only through a
temporary entry point. Writes benchmarks/studies/results/value_ceiling.md and value_ceiling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import LEARNED, Outcome, run_config
from benchmarks.harness.problems import HELD_OUT_SEED
from benchmarks.harness.servers import UNBOUNDED_ADMISSION, install_verifier_plugins
from tests.servers import free_port, running_server
from training.tasks import from_prompt, get_task, step_solvable
from verifiers.protocol import ScoringContext, StepItem

RESULTS = Path(__file__).parent / "results"
VALUE = {**LEARNED, "solvable": 1.0}
# (name, reasoning object without verifiers)
CONFIGS: list[tuple[str, dict]] = [
    ("best_of_n/16", {"strategy": "best_of_n", "n_candidates": 16}),
    ("beam/3", {"strategy": "beam", "beam_width": 3}),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}),
    ("tot", {"strategy": "tot"}),
    ("tot 5x8", {"strategy": "tot", "beam_width": 5, "n_candidates": 8}),
]


class SolvableVerifier:
    """Exact value of a demo-task step: valid, and the problem still solvable after it. A
    question that is no demo problem scores 1 (no opinion)."""

    name = "solvable"

    def __init__(self, deps=None) -> None:
        pass

    async def score(self, items: Sequence[StepItem], context: ScoringContext) -> list[float]:
        scores = []
        for item in items:
            problem = from_prompt(item.problem)
            steps = [s.strip() for s in item.steps]
            scores.append(1.0 if problem is None or not steps
                          else float(step_solvable(problem, steps[:-1], steps[-1])))
        return scores


def install_plugin(directory: Path) -> Path:
    """SolvableVerifier as a verifier plugin; put `directory` on the server's PYTHONPATH."""
    return install_verifier_plugins(
        directory, "deliberate-value-ceiling",
        {"solvable": "benchmarks.studies.value_ceiling:SolvableVerifier"})


def command_line(args: argparse.Namespace) -> str:
    flags = [f"--countdown {args.countdown}"] + [f"--config '{c}'" for c in args.config or []]
    if args.prm:
        flags.append(f"--prm {args.prm}")
    if args.out != "value_ceiling":
        flags.append(f"--out {args.out}")
    return " ".join(flags)


def report(rows: list[dict], args: argparse.Namespace, wall: float) -> str:
    lines = [
        "# Value ceiling: countdown step search with learned and with exact values", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.machine()}), {wall / 60:.1f} min. Command: `python -m "
        f"benchmarks.studies.value_ceiling {command_line(args)}`.", "",
        f"PRM: `{args.prm or 'models/demo/adapters/prm'}`.", "",
        f"{args.countdown} held-out countdown problems (the `benchmarks.reasoning` set, seed "
        f"{args.seed + 100}), levels 1-5; chat requests at temperature 0, so branches sample at "
        "the server's search temperature (0.7). `tot 5x8`: breadth 5, 8 proposals per state "
        "(`n_candidates`). `learned`: prm x orm; `learned x solvable`: times the exact value "
        "(valid and the target still reachable), a ceiling for any learned verifier.", "",
        "| config | learned | tokens | learned x solvable | tokens | per level (learned x "
        "solvable) |", "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['config']} | {row['learned']:.1%} | {row['learned_tokens']:.0f} | "
                     f"{row['value']:.1%} | {row['value_tokens']:.0f} | {row['value_levels']} |")
    return "\n".join(lines) + "\n"


def per_level(outcomes: list[Outcome], levels: dict[str, int]) -> str:
    by: dict[int, list[bool]] = {}
    for o in outcomes:
        by.setdefault(levels[o.problem], []).append(o.correct)
    return ", ".join(f"L{k} {sum(v)}/{len(v)}" for k, v in sorted(by.items()))


async def main_async(args: argparse.Namespace) -> None:
    problems = get_task("countdown").generate(args.seed + 100, args.countdown)
    levels = {p.id: p.difficulty for p in problems}
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--max-n", "16",
               "--log-level", "warning"]
    if args.prm:  # served as `prm` in place of the demo's
        command += ["--lora-modules", f"prm={args.prm}", "--adapter-roots", "models",
                    str(Path(args.prm).resolve().parent)]
    configs = [c for c in CONFIGS if not args.config or c[0] in args.config]
    rows, started = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(install_plugin(Path(tmp))), str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
        with running_server(command, port, RESULTS / "logs" / "value-ceiling-server.log",
                            env=env) as url:
            for name, reasoning in configs:
                row: dict = {"config": name}
                for key, weights in (("learned", LEARNED), ("value", VALUE)):
                    outcomes, _ = await run_config(url, problems, name,
                                                   {**reasoning, "verifiers": weights, "seed": 1},
                                                   key, args.concurrency)
                    row[key] = sum(o.correct for o in outcomes) / len(outcomes)
                    row[f"{key}_tokens"] = statistics.fmean(o.completion_tokens for o in outcomes)
                    row[f"{key}_levels"] = per_level(outcomes, levels)
                print(json.dumps(row), flush=True)
                rows.append(row)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(rows, indent=1))
    (RESULTS / f"{args.out}.md").write_text(report(rows, args, time.monotonic() - started))
    print((RESULTS / f"{args.out}.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.value_ceiling",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--countdown", type=int, default=120)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--prm", help="a PRM adapter directory to serve as `prm` (default: the "
                                      "demo's, models/demo/adapters/prm)")
    parser.add_argument("--config", action="append", help="run only these configs (repeatable)")
    parser.add_argument("--out", default="value_ceiling",
                        help="results name under benchmarks/studies/results (.md and .json)")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
