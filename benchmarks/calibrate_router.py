"""Fit the router's thresholds for the demo model on calibration problems, through the HTTP API.

    python -m benchmarks.calibrate_router [--per-level 30] [--countdown 120] [--refit]

Calibration problems come from seed stream 800_000+, apart from the reasoning benchmark's
held-out 900_000+ and the training streams (>= 1_000_000), so `benchmarks.reasoning` measures
the fitted router on problems it was not fitted on. One server answers each problem with greedy,
and with beam (width 3) and mcts (depth 5) under each verifier set that gets its own thresholds:
learned (prm x orm), learned plus `logic`, and the server's default search verifiers. An `auto`
pass with every difficulty routed to greedy reads each problem's estimated difficulty.
`training.components.router_fit.fit_thresholds` then picks, per verifier set, the cheapest (low, high) whose
accuracy is at least (1 - `--tolerance`) times always-mcts's; with `--mcts-accept-greedy` /
`--mcts-budget`, mcts also runs greedy first, and the fit may route to that instead.

Writes models/demo/router.json (the server's default `--router-file`),
benchmarks/results/router_calibration.md, and router_calibration.json (every outcome, so a new
fit needs no new run: `--refit`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.chat import LEARNED, WITH_LOGIC, Outcome, run_config
from benchmarks.harness.problems import CALIBRATION_SEED, add_run_arguments, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from search.router import Thresholds
from server.settings import Settings
from tests.servers import free_port, running_server
from training.components.router_fit import CalibrationProblem, Fit, evaluate, fit_thresholds

RESULTS = Path(__file__).parent / "results"
ROUTER_FILE = Path(Settings.model_fields["router_file"].default)  # where the server looks
SEARCHES = {"beam": {"strategy": "beam", "beam_width": 3},
            "mcts": {"strategy": "mcts", "max_depth": 5}}
GREEDY_FIRST = "mcts greedy-first"  # the phase of mcts run with the route flags


def verifier_sets() -> dict[str, dict[str, float]]:
    default = {k: v for k, v in Settings().search_verifiers.items() if v}
    sets = {"learned": LEARNED, "learned+logic": WITH_LOGIC}
    if set(default) not in [set(w) for w in sets.values()]:
        sets["server default"] = default
    return sets


def calibration_problems(difficulty: list[Outcome], greedy: list[Outcome],
                         searches: dict[str, list[Outcome]]) -> list[CalibrationProblem]:
    """Join the phases per problem (each phase answers the same problems, in order)."""
    problems = []
    for i, d in enumerate(difficulty):
        runs = {"greedy": greedy[i], **{name: rows[i] for name, rows in searches.items()}}
        if any(o.problem != d.problem for o in runs.values()):
            raise RuntimeError(f"calibration phases disagree on problem {i}: rerun them")
        problems.append(CalibrationProblem(
            difficulty=d.difficulty, correct={k: o.correct for k, o in runs.items()},
            tokens={k: o.completion_tokens for k, o in runs.items()}))
    return problems


def report(fits: dict[str, tuple[Fit, dict[str, Fit], bool]], args: argparse.Namespace,
           n: int, wall_s: float) -> str:
    lines = ["# Router calibration", "",
             f"{'Refitted from the saved outcomes' if args.refit else 'Run'} "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; the run took {wall_s / 60:.1f} "
             f"min. Command: `python -m benchmarks.calibrate_router {command_flags(args)}`.", "",
             *([f"mcts ran two ways: as asked, and greedy first ({mcts_route(args)}: the "
                "greedy answer stands when the PRM scores it at least accept_greedy; the budget "
                "counts the greedy attempt). A fit may route to either; the table says how its "
                "mcts runs.", ""] if mcts_route(args) else []),
             f"{n} calibration problems (seed stream {args.seed}+). Accuracy and mean generated "
             "tokens of each routing on them; the fitted one is the cheapest whose accuracy is at "
             f"least {1 - args.tolerance:.2f}x always-mcts's (issue 7's bar for auto). These are "
             "in-sample figures: `benchmarks/results/reasoning.md` measures the fitted router on "
             "held-out problems.", "",
             "| verifiers | routing | low | high | accuracy | tokens |", "|---|---|---:|---:|---:|---:|"]
    for setting, (fit, refs, first) in fits.items():
        fitted = "fitted, mcts greedy first" if first else "fitted"
        for name, f in [*refs.items(), (fitted, fit)]:
            lines.append(f"| {setting} | {name} | {f.low:g} | {f.high:g} | {f.accuracy:.1%} | "
                         f"{f.tokens:.0f} |")
    return "\n".join(lines) + "\n"


async def run_phases(args: argparse.Namespace) -> dict[str, list[Outcome]]:
    """{phase: outcomes}: "difficulty", "greedy", and "<setting>/<beam|mcts>"."""
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    # low = high = 1: `auto` answers greedily and reports each problem's difficulty
    command = ["-m", "server", *UNBOUNDED_ADMISSION,
               "--model", args.model, "--port", str(port), "--log-level",
               "warning", "--router-low", "1", "--router-high", "1"]
    phases: dict[str, list[Outcome]] = {}
    with running_server(command, port, RESULTS / "logs" / "calibrate-router-server.log") as url:
        async def phase(key: str, name: str, reasoning: dict, setting: str) -> None:
            rows, info = await run_config(url, problems, name, {**reasoning, "seed": 1}, setting,
                                          args.concurrency)
            print(f"{key:24s} accuracy {sum(o.correct for o in rows) / len(rows):.1%} "
                  f"wall {info['wall_s']} s", flush=True)
            phases[key] = rows

        await phase("difficulty", "auto", {"strategy": "auto"}, "-")
        await phase("greedy", "greedy", {"strategy": "greedy"}, "-")
        for setting, weights in verifier_sets().items():
            for name, reasoning in SEARCHES.items():
                await phase(f"{setting}/{name}", name, {**reasoning, "verifiers": weights},
                            setting)
            if mcts_route(args):  # the mcts auto may route to instead, run as the table says
                await phase(f"{setting}/{GREEDY_FIRST}", "mcts",
                            {**SEARCHES["mcts"], **mcts_route(args), "verifiers": weights},
                            setting)
    return phases


def command_flags(args: argparse.Namespace) -> str:
    route = "".join(f" --{flag} {value:g}" for flag, value in (
        ("mcts-accept-greedy", args.mcts_accept_greedy), ("mcts-budget", args.mcts_budget))
        if value is not None)
    return (f"--per-level {args.per_level} --countdown {args.countdown} --seed {args.seed} "
            f"--tolerance {args.tolerance}{route}")


def mcts_route(args: argparse.Namespace) -> dict:
    """How auto's mcts runs (the table's "mcts" settings): greedy first, and a token budget."""
    return {k: v for k, v in (("accept_greedy", args.mcts_accept_greedy),
                              ("budget_tokens", args.mcts_budget)) if v is not None}


def fit_all(phases: dict[str, list[Outcome]], tolerance: float
            ) -> tuple[str, dict[str, tuple[Fit, dict[str, Fit], bool]]]:
    """The estimator the difficulties came from, and per verifier set (fit, reference routings,
    whether its mcts answers greedily first). The fit is the cheapest routing, over the mcts
    variants measured, with at least (1 - tolerance) times always-mcts's accuracy (issue 7's bar)."""
    estimators = {o.difficulty_estimator for o in phases["difficulty"]}
    if len(estimators) != 1 or None in estimators:
        raise RuntimeError(f"expected one difficulty estimator to answer, got {estimators}")
    fits = {}
    for setting in verifier_sets():
        variants = {False: "mcts", True: GREEDY_FIRST}
        calibration = {first: calibration_problems(
            phases["difficulty"], phases["greedy"],
            {"beam": phases[f"{setting}/beam"], "mcts": phases[f"{setting}/{phase}"]})
            for first, phase in variants.items() if f"{setting}/{phase}" in phases}
        plain = calibration[False]
        mcts = evaluate(plain, 0.0, 0.0)
        candidates = [(fit, first) for first, problems in calibration.items()
                      if (fit := fit_thresholds(problems, tolerance, reference=mcts.accuracy))]
        fit, first = min(candidates, key=lambda c: (c[0].tokens, -c[0].accuracy))
        default = Thresholds()
        # as the server routes with (1, 1): only d = 1.0 exactly reaches mcts
        refs = {"always greedy": evaluate(plain, 1.0, 1.0),
                "always beam": evaluate(plain, 0.0, 1.0), "always mcts": mcts,
                "default": evaluate(plain, default.low, default.high)}
        if True in calibration:
            refs["always mcts, greedy first"] = evaluate(calibration[True], 0.0, 0.0)
        fits[setting] = (fit, refs, first)
    return estimators.pop(), fits


def router_table(args: argparse.Namespace, estimator: str, n: int,
                 fits: dict[str, tuple[Fit, dict[str, Fit]]]) -> dict:
    routes = []
    for setting, weights in verifier_sets().items():
        fit, refs, first = fits[setting]
        mcts = refs["always mcts"]
        routes.append({"verifiers": sorted(weights), "low": fit.low, "high": fit.high,
                       **({"mcts": mcts_route(args)} if first and mcts_route(args) else {}),
                       "calibration": {"accuracy": round(fit.accuracy, 4),
                                       "tokens": round(fit.tokens, 1),
                                       "always_mcts_accuracy": round(mcts.accuracy, 4),
                                       "always_mcts_tokens": round(mcts.tokens, 1)}})
    return {"model": args.model, "estimator": estimator,
            "fitted_by": f"python -m benchmarks.calibrate_router {command_flags(args)}",
            "problems": n, "routes": routes}


async def main_async(args: argparse.Namespace) -> None:
    outcomes_path = RESULTS / "router_calibration.json"
    started = time.monotonic()
    if args.refit:
        saved = json.loads(outcomes_path.read_text())
        phases = {k: [Outcome(**o) for o in rows] for k, rows in saved["phases"].items()}
        wall = saved["wall_s"]
    else:
        phases = await run_phases(args)
        wall = time.monotonic() - started
        outcomes_path.write_text(json.dumps(
            {"wall_s": round(wall, 1),
             "phases": {k: [asdict(o) for o in rows] for k, rows in phases.items()}}))
    estimator, fits = fit_all(phases, args.tolerance)
    n = len(phases["difficulty"])
    args.out.write_text(json.dumps(router_table(args, estimator, n, fits), indent=2) + "\n")
    text = report(fits, args, n, wall)
    (RESULTS / "router_calibration.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_router",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, CALIBRATION_SEED)
    parser.add_argument("--tolerance", type=float, default=0.03,
                        help="share of the best accuracy given up for fewer tokens")
    parser.add_argument("--out", type=Path, default=ROUTER_FILE)
    parser.add_argument("--mcts-accept-greedy", type=float, default=None,
                        help="auto's mcts answers greedily first and searches only if the PRM "
                             "scores that answer below this (the auto_limits study chose 1e-4)")
    parser.add_argument("--mcts-budget", type=int, default=None,
                        help="token budget of the mcts auto routes to, greedy attempt included "
                             "(auto_limits' 400-token search plus a greedy answer: 450)")
    parser.add_argument("--refit", action="store_true",
                        help="fit again from the saved router_calibration.json, without a run")
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
