"""Issue 7's auto target on a larger held-out draw, with its uncertainty: `auto` against
always-mcts (learned verifiers), through the HTTP API.

    python -m benchmarks.studies.auto_target [--per-level 90] [--countdown 360] [--concurrency 16]

`benchmarks.reasoning` measures the target on 360 problems, where one problem moves the accuracy
ratio by about 0.004 and the token ratio's spread is wider still. This runs only the two configs
the target compares, on three times as many fresh problems (seed stream 700_000+, apart from the
benchmark's 900_000+, the router's calibration 800_000+ and the training streams), and reports
both ratios with paired bootstrap intervals (problems resampled, both configs together) and the
share of resamples that meet the target. Writes benchmarks/studies/results/auto_target.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import LEARNED, Outcome, run_config
from benchmarks.harness.problems import add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from benchmarks.reasoning import AUTO_ACCURACY, AUTO_TOKENS
from tests.servers import free_port, running_server

RESULTS = Path(__file__).parent / "results"
SEED = 700_000
CONFIGS = {"mcts/5": {"strategy": "mcts", "max_depth": 5}, "auto": {"strategy": "auto"}}


@dataclass(frozen=True)
class Ratios:
    accuracy: float  # auto's accuracy / always-mcts's
    tokens: float  # auto's generated tokens / always-mcts's


@dataclass(frozen=True)
class Estimate:
    point: Ratios
    low: Ratios  # 2.5th percentiles of the bootstrap
    high: Ratios  # 97.5th
    met_share: float  # resamples in which both targets hold


def ratios(pairs: list[tuple[Outcome, Outcome]]) -> Ratios:
    """(auto, mcts) outcomes of the same problems -> auto's ratios against mcts."""
    right = sum(m.correct for _, m in pairs)
    return Ratios(accuracy=sum(a.correct for a, _ in pairs) / right if right else 0.0,
                  tokens=sum(a.completion_tokens for a, _ in pairs)
                  / max(sum(m.completion_tokens for _, m in pairs), 1))


def met(r: Ratios) -> bool:
    return r.accuracy >= AUTO_ACCURACY and r.tokens <= AUTO_TOKENS


def bootstrap(pairs: list[tuple[Outcome, Outcome]], resamples: int, seed: int = 0) -> Estimate:
    rng = random.Random(seed)
    draws = [ratios(rng.choices(pairs, k=len(pairs))) for _ in range(resamples)]

    def percentile(field: str, q: float) -> float:
        values = sorted(getattr(d, field) for d in draws)
        return values[min(int(q * len(values)), len(values) - 1)]

    return Estimate(point=ratios(pairs),
                    low=Ratios(percentile("accuracy", 0.025), percentile("tokens", 0.025)),
                    high=Ratios(percentile("accuracy", 0.975), percentile("tokens", 0.975)),
                    met_share=sum(met(d) for d in draws) / len(draws))


def paired(outcomes: dict[str, list[Outcome]]) -> list[tuple[Outcome, Outcome]]:
    mcts = {o.problem: o for o in outcomes["mcts/5"]}
    return [(a, mcts[a.problem]) for a in outcomes["auto"]]


def report(outcomes: dict[str, list[Outcome]], estimate: Estimate, args: argparse.Namespace,
           wall_s: float) -> str:
    lines = [
        "# auto against always-mcts, on a larger held-out draw",
        "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {wall_s / 60:.1f} min. Command: "
        f"`python -m benchmarks.studies.auto_target --per-level {args.per_level} --countdown "
        f"{args.countdown} --seed {args.seed} --concurrency {args.concurrency} --bootstrap "
        f"{args.bootstrap}`.",
        "",
        f"{len(outcomes['auto'])} problems ({8 * args.per_level} arithmetic, {args.countdown} "
        f"countdown; seed stream {args.seed}+), learned verifiers (prm x orm), `auto` routed by "
        "`models/demo/router.json`. Tokens are `usage.completion_tokens`.",
        "",
        "| config | accuracy | tokens |", "|---|---:|---:|",
    ]
    for name, rows in outcomes.items():
        lines.append(f"| {name} | {sum(o.correct for o in rows) / len(rows):.1%} | "
                     f"{sum(o.completion_tokens for o in rows) / len(rows):.0f} |")
    p, lo, hi = estimate.point, estimate.low, estimate.high
    lines += [
        "",
        f"- accuracy ratio {p.accuracy:.3f} (95% bootstrap interval {lo.accuracy:.3f}-"
        f"{hi.accuracy:.3f}; target >= {AUTO_ACCURACY})",
        f"- token ratio {p.tokens:.3f} ({lo.tokens:.3f}-{hi.tokens:.3f}; target <= "
        f"{AUTO_TOKENS})",
        f"- target {'met' if met(p) else 'missed'} at the point estimate; met in "
        f"{estimate.met_share:.0%} of {args.bootstrap} paired resamples",
        "",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--max-n", "16",
               "--log-level", "warning"]
    started = time.monotonic()
    outcomes: dict[str, list[Outcome]] = {}
    with running_server(command, port, RESULTS / "logs" / "auto-target-server.log") as url:
        for name, reasoning in CONFIGS.items():
            outcomes[name], _ = await run_config(url, problems, name,
                                                 {**reasoning, "verifiers": LEARNED, "seed": 1},
                                                 "learned", args.concurrency)
            print(f"{name}: {sum(o.correct for o in outcomes[name]) / len(problems):.1%}",
                  flush=True)
    wall = time.monotonic() - started
    estimate = bootstrap(paired(outcomes), args.bootstrap)
    (RESULTS / "auto_target.json").write_text(json.dumps(
        {"estimate": asdict(estimate),
         "outcomes": {k: [asdict(o) for o in v] for k, v in outcomes.items()}}))
    text = report(outcomes, estimate, args, wall)
    (RESULTS / "auto_target.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studies.auto_target",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, SEED)
    parser.set_defaults(per_level=90, countdown=360)  # three times the benchmark's draw
    parser.add_argument("--bootstrap", type=int, default=5000, help="paired resamples")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
