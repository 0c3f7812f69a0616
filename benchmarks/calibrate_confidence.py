"""Fit the confidence calibration for the demo model on fresh problems, through the HTTP API.

    python -m benchmarks.calibrate_confidence [--per-level 25] [--countdown 200] [--refit]

Problems come from seed stream 600_000+, apart from the router's calibration problems
(800_000+), the reasoning benchmark's held-out ones (900_000+), the auto_target study's
(700_000+) and the training streams. One
server without a calibration (`--confidence-file ''`) answers each problem greedily (a single
pass: the family of no verifiers), with beam (width 3), and with best_of_n, self_consistency
and deepconf (8 samples each; deepconf online, its defaults) under the server's default search
verifiers; each answer's `reasoning.confidence.signals` and whether it is right are the data.
Every third problem is held out; `training.components.confidence_fit` fits a logistic
regression, then an isotonic map of its outputs, per family on the rest: greedy (path
signals), beam (path signals, the finished paths' agreement, the verifiers' score: any
strategy under those verifiers, mcts's among them, but the three below), best_of_n,
self_consistency and deepconf (the same signals, each its strategy's own family: the same
verifiers score their samples, but a sample's signals mean other things than a beam path's)
and a fallback for any other model or verifier set (path signals of greedy and beam). The
held-out AUROC and ECE, of each signal and of the fitted mapping, go to the report.

Writes models/demo/confidence.json (the server's default `--confidence-file`),
benchmarks/results/confidence_calibration.md, and confidence_calibration.json (every outcome,
so a new fit needs no new run: `--refit`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request
from benchmarks.harness.problems import CONFIDENCE_SEED, add_run_arguments, bucket_of, \
    load_problems
from benchmarks.harness.servers import SERVED_NAME, UNBOUNDED_ADMISSION
from search.calibration import FEATURES
from server.settings import Settings
from tests.servers import free_port, running_server
from training.components.confidence_fit import auroc, ece, fit_family
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
CONFIDENCE_FILE = Path(Settings.model_fields["confidence_file"].default)  # where the server looks
PATH_FEATURES = ("mean", "lowest_group", "bottom", "tail")
PHASES = {"greedy": {"strategy": "greedy"}, "beam": {"strategy": "beam", "beam_width": 3},
          "best_of_n": {"strategy": "best_of_n", "n_candidates": 8},
          "self_consistency": {"strategy": "self_consistency", "n_candidates": 8},
          "deepconf": {"strategy": "deepconf", "n_candidates": 8}}
# the phases whose family is their strategy's own (greedy's and beam's match by verifiers)
STRATEGY_FAMILIES = ("best_of_n", "self_consistency", "deepconf")


def search_verifiers() -> list[str]:
    return sorted(k for k, v in Settings().search_verifiers.items() if v)


async def ask(http: httpx.AsyncClient, problem: Problem, reasoning: dict) -> dict:
    r = await http.post("/v1/chat/completions", json=chat_request(problem, reasoning))
    r.raise_for_status()
    body = r.json()
    answer = body["choices"][0]["message"]["content"]
    confidence = body["reasoning"]["confidence"]
    return {"problem": problem.id, "task": problem.task, "bucket": bucket_of(problem),
            "correct": get_task(problem.task).check(problem, answer),
            "uncalibrated": confidence["value"], "signals": confidence["signals"],
            "tokens": body["usage"]["completion_tokens"]}


async def run_phases(args: argparse.Namespace, names: list[str]) -> dict[str, list[dict]]:
    problems = load_problems(args.per_level, args.countdown, args.seed)
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--log-level", "warning", "--confidence-file", ""]
    phases: dict[str, list[dict]] = {}
    with running_server(command, port, RESULTS / "logs" / "calibrate-confidence-server.log") as url:
        gate = asyncio.Semaphore(args.concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            for name in names:
                reasoning = PHASES[name]
                started = time.monotonic()

                async def one(problem: Problem) -> dict:
                    async with gate:
                        return await ask(http, problem, {**reasoning, "seed": 1})

                phases[name] = list(await asyncio.gather(*(one(p) for p in problems)))
                rows = phases[name]
                print(f"{name:8s} accuracy {sum(r['correct'] for r in rows) / len(rows):.1%} "
                      f"wall {time.monotonic() - started:.0f} s", flush=True)
    return phases


def split(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(fit, held out): every third problem held out."""
    return ([r for i, r in enumerate(rows) if i % 3 != 2],
            [r for i, r in enumerate(rows) if i % 3 == 2])


def fit_all(phases: dict[str, list[dict]]) -> tuple[list[dict], dict]:
    """The families, and per family the held-out figures."""
    from search.calibration import CalibrationTable

    verifiers = search_verifiers()
    plans = {"greedy": (phases["greedy"], PATH_FEATURES, SERVED_NAME, []),
             "beam": (phases["beam"], FEATURES, SERVED_NAME, verifiers),
             **{name: (phases[name], FEATURES, SERVED_NAME, verifiers)
                for name in STRATEGY_FAMILIES if name in phases},
             "fallback": (phases["greedy"] + phases["beam"], PATH_FEATURES, None, None)}
    families, figures = [], {}
    for name, (rows, features, model, names) in plans.items():
        train, test = split(rows) if name != "fallback" else (
            split(phases["greedy"])[0] + split(phases["beam"])[0],
            split(phases["greedy"])[1] + split(phases["beam"])[1])
        family = fit_family([r["signals"] for r in train], [r["correct"] for r in train],
                            features, model, names, isotonic=True)
        if name in STRATEGY_FAMILIES:
            family["strategy"] = name
        mapping = CalibrationTable.from_json({"families": [family]}).families[0]
        logistic = dataclasses.replace(mapping, isotonic=None)
        labels = [r["correct"] for r in test]
        calibrated = [mapping.probability(r["signals"]) for r in test]
        raw = [r["uncalibrated"] for r in test]
        signal_auroc = {f: auroc([_value(r["signals"].get(f)) for r in test], labels)
                        for f in features}
        figures[name] = {
            "fit": len(train), "held_out": len(test),
            "accuracy": round(sum(labels) / len(labels), 4),
            "auroc": _round(auroc(calibrated, labels)), "ece": round(ece(calibrated, labels), 4),
            "logistic_ece": round(ece([logistic.probability(r["signals"]) for r in test],
                                      labels), 4),
            "uncalibrated_auroc": _round(auroc(raw, labels)),
            "uncalibrated_ece": round(ece(raw, labels), 4),
            "signal_auroc": {f: _round(v) for f, v in signal_auroc.items()}}
        family["held_out"] = {k: figures[name][k] for k in ("auroc", "ece", "held_out")}
        families.append(family)
    return families, figures


def report(figures: dict, args: argparse.Namespace, n: dict[str, int], wall_s: float,
           fitted_by: str) -> str:
    counts = ", ".join(f"{count} answered {'greedily' if name == 'greedy' else 'by ' + name}"
                       for name, count in n.items())
    lines = ["# Confidence calibration", "",
             f"{'Refitted from the saved outcomes' if args.refit else 'Run'} "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; the runs took {wall_s / 60:.1f} "
             f"min. Commands: `{fitted_by}`.",
             "", f"Problems from seed stream {args.seed}+ ({counts}; beam: width 3; best_of_n, "
             "self_consistency and deepconf: 8 samples, deepconf online with its defaults; "
             f"searches under the verifiers {', '.join(search_verifiers())}); every third "
             "held out. "
             "Held-out AUROC (right vs wrong answers) and expected calibration error (10 bins) "
             "of the fitted mapping, of the uncalibrated mapping the server uses without a "
             "file, and the AUROC of each signal alone. `benchmarks/metacognition.py` measures "
             "properly.", "",
             "| family | fit | held out | accuracy | AUROC | ECE | ECE, logistic alone | "
             "uncal. AUROC | uncal. ECE |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, f in figures.items():
        lines.append(f"| {name} | {f['fit']} | {f['held_out']} | {f['accuracy']:.1%} | "
                     f"{_fmt(f['auroc'])} | {f['ece']:.3f} | {_fmt(f.get('logistic_ece'))} | "
                     f"{_fmt(f['uncalibrated_auroc'])} | {f['uncalibrated_ece']:.3f} |")
    lines += ["", "Each signal's held-out AUROC:", "",
              "| family | " + " | ".join(FEATURES) + " |", "|---|" + "---:|" * len(FEATURES)]
    for name, f in figures.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(f["signal_auroc"].get(s))
                                                 for s in FEATURES) + " |")
    return "\n".join(lines) + "\n"


def command_flags(args: argparse.Namespace) -> str:
    phases = "" if getattr(args, "phases", None) is None else f" --phases {args.phases}"
    return f"--per-level {args.per_level} --countdown {args.countdown} --seed {args.seed}{phases}"


async def main_async(args: argparse.Namespace) -> None:
    outcomes_path = RESULTS / "confidence_calibration.json"
    started = time.monotonic()
    if args.refit:
        saved = json.loads(outcomes_path.read_text())
        phases, wall = saved["phases"], saved["wall_s"]
        commands = saved.get("commands") or {name: command_flags(args) for name in phases}
    else:
        names = list(PHASES) if args.phases is None else args.phases.split(",")
        unknown = set(names) - set(PHASES)
        if unknown:
            raise SystemExit(f"--phases: unknown {sorted(unknown)} (known: {', '.join(PHASES)})")
        # the phases not run keep their saved outcomes (and the command that made them)
        saved = json.loads(outcomes_path.read_text()) if set(names) != set(PHASES) else {}
        phases = {**saved.get("phases", {}), **await run_phases(args, names)}
        commands = {**saved.get("commands", {}), **{name: command_flags(args) for name in names}}
        wall = time.monotonic() - started + saved.get("wall_s", 0)
        outcomes_path.write_text(json.dumps({"wall_s": round(wall, 1), "phases": phases,
                                             "commands": commands}))
    families, figures = fit_all(phases)
    n = {name: len(rows) for name, rows in phases.items()}
    tool = "python -m benchmarks.calibrate_confidence"
    fitted_by = (f"{tool} {next(iter(commands.values()))}" if len(set(commands.values())) == 1
                 else "; ".join(f"{name}: {tool} {flags}" for name, flags in commands.items()))
    args.out.write_text(json.dumps(
        {"model": args.model, "fitted_by": fitted_by, "problems": n, "families": families},
        indent=2) + "\n")
    text = report(figures, args, n, wall, fitted_by)
    (RESULTS / "confidence_calibration.md").write_text(text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate_confidence",
                                     description=__doc__.splitlines()[0])
    add_run_arguments(parser, CONFIDENCE_SEED)
    parser.set_defaults(per_level=25, countdown=200)
    parser.add_argument("--out", type=Path, default=CONFIDENCE_FILE)
    parser.add_argument("--phases", default=None,
                        help=f"comma-separated, of {', '.join(PHASES)} (default all): the others "
                             "keep their saved outcomes")
    parser.add_argument("--refit", action="store_true",
                        help="fit again from the saved confidence_calibration.json, without a run")
    asyncio.run(main_async(parser.parse_args(argv)))


def _value(v) -> float:
    return 0.0 if v is None else float(v)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


if __name__ == "__main__":
    main()
