"""Meta-cognition, measured: how well each answer's confidence says whether it is right, and
what confidence saves when it decides the compute (issue 33).

    flock /work/heavy.lock python -m benchmarks metacognition [--per-level 10] [--countdown 60]

One server (the demo model, its default verifiers and its committed confidence calibration,
models/demo/confidence.json) answers fresh problems of both demo tasks (seed stream 700_000+,
apart from the calibration's 600_000+ and the training streams) with greedy,
self_consistency@N, deepconf offline@N and online@N, beam, mcts, best_of_n@N, `auto` as the
router runs it, and `auto` escalating by confidence. From every answer it reads
`reasoning.confidence` (the calibrated value and the signals) and checks the answer exactly.

Reported, per task and per difficulty bucket where the numbers allow:
- AUROC against exact correctness of each signal and of the calibrated confidence; expected
  calibration error (10 equal-width bins) of the uncalibrated mapping and of the calibrated
  value (targets: AUROC >= 0.85, ECE <= 0.05);
- accuracy against completion tokens (every token generated) per configuration (targets:
  deepconf online >= self_consistency@N's accuracy at <= 0.5x its tokens; confidence-gated auto
  >= the best fixed strategy's accuracy at <= 0.4x its tokens);
- the risk-coverage curve of selective answering (answer only above a confidence).

Writes benchmarks/results/metacognition.{md,json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import random
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request
from benchmarks.harness.publish import publish
from benchmarks.harness.problems import add_run_arguments, bucket_of, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from search.calibration import uncalibrated
from tests.servers import free_port, running_server
from training.components.confidence_fit import auroc
from training.components.confidence_fit import ece as calibration_error
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
METACOGNITION_SEED = 700_000
N = 8
CONFIGS: list[tuple[str, dict]] = [
    ("greedy", {"strategy": "greedy"}),
    (f"self_consistency/{N}", {"strategy": "self_consistency", "n_candidates": N}),
    (f"deepconf offline/{N}", {"strategy": "deepconf", "n_candidates": N,
                               "deepconf_mode": "offline"}),
    # the defaults: a warm-up of 2, then DeepConf's adaptive sampling (no more traces once
    # 95% of the vote's weight agrees)
    (f"deepconf online/{N}", {"strategy": "deepconf", "n_candidates": N,
                              "deepconf_mode": "online"}),
    (f"best_of_n/{N}", {"strategy": "best_of_n", "n_candidates": N}),
    ("beam/3", {"strategy": "beam", "beam_width": 3}),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}),
    # the defaults before: a warm-up of 4, with and without the consensus stop
    (f"deepconf online/{N}, warm-up 4", {"strategy": "deepconf", "n_candidates": N,
                                         "deepconf_mode": "online", "warmup": 4}),
    (f"deepconf online/{N}, warm-up 4, no consensus", {
        "strategy": "deepconf", "n_candidates": N, "deepconf_mode": "online", "warmup": 4,
        "consensus": False}),
    ("auto", {"strategy": "auto"}),
    ("auto, escalating", {"strategy": "auto", "escalate": True}),
    # which last stage pays for the doubted greedy answers (reasoning.escalation_stages)
    ("auto, escalating greedy>beam", {"strategy": "auto",
                                      "escalation_stages": ["greedy", "beam"]}),
    ("auto, escalating greedy>mcts", {"strategy": "auto",
                                      "escalation_stages": ["greedy", "mcts"]}),
    ("auto, escalating greedy>deepconf", {
        "strategy": "auto", "escalation_stages": ["greedy", "deepconf"], "n_candidates": N}),
]
FIXED = ("greedy", f"self_consistency/{N}", f"best_of_n/{N}", "beam/3", "mcts/5")
SIGNALS = ("mean", "lowest_group", "bottom", "tail", "agreement", "verifier")
TARGET_AUROC, TARGET_ECE = 0.85, 0.05


@dataclass
class Answer:
    config: str
    problem: str
    task: str
    bucket: str
    correct: bool
    tokens: int
    strategy: str
    confidence: float | None
    calibrated: bool
    uncalibrated: float | None
    signals: dict
    stages: list | None
    latency_s: float


async def ask(http: httpx.AsyncClient, problem: Problem, config: str, reasoning: dict
              ) -> Answer:
    started = time.monotonic()
    r = await http.post("/v1/chat/completions", json=chat_request(problem, reasoning))
    r.raise_for_status()
    body = r.json()
    info = body["reasoning"]
    confidence = info.get("confidence") or {}
    signals = confidence.get("signals") or {}
    return Answer(
        config=config, problem=problem.id, task=problem.task, bucket=bucket_of(problem),
        correct=get_task(problem.task).check(problem, body["choices"][0]["message"]["content"]),
        tokens=body["usage"]["completion_tokens"], strategy=info["strategy"],
        confidence=confidence.get("value"), calibrated=bool(confidence.get("calibrated")),
        uncalibrated=uncalibrated(signals) if signals else None, signals=signals,
        stages=info.get("stages"), latency_s=time.monotonic() - started)


async def run(url: str, problems: list[Problem], configs: list[tuple[str, dict]],
              concurrency: int) -> list[Answer]:
    gate = asyncio.Semaphore(concurrency)
    answers: list[Answer] = []
    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        for name, reasoning in configs:
            async def one(problem: Problem) -> Answer:
                async with gate:
                    return await ask(http, problem, name, reasoning)

            started = time.monotonic()
            got = await asyncio.gather(*(one(p) for p in problems))
            answers += got
            print(f"{name}: accuracy {sum(a.correct for a in got) / len(got):.3f}, tokens "
                  f"{statistics.fmean(a.tokens for a in got):.0f}, "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    return answers


# --- measures ----------------------------------------------------------------------------------

def ece(probabilities: list[float], labels: list[bool]) -> float | None:
    """Expected calibration error over 10 equal-width bins; None without answers."""
    return calibration_error(probabilities, labels) if probabilities else None


def ece_floor(probabilities: list[float], draws: int = 1000, seed: int = 0
              ) -> tuple[float, float] | None:
    """The ECE a perfectly calibrated confidence shows on this many answers (its mean and 95th
    percentile): each answer right with exactly its stated probability, drawn `draws` times.
    On 84 answers spread over the middle bins it is ~0.08, above the 0.05 target: below what
    the sample can tell apart, a measured ECE is noise."""
    if not probabilities:
        return None
    rng = random.Random(seed)
    floors = sorted(calibration_error(probabilities, [rng.random() < p for p in probabilities])
                    for _ in range(draws))
    return statistics.fmean(floors), floors[int(0.95 * draws) - 1]


def quality(answers: list[Answer]) -> dict:
    """AUROC of each signal and of the confidence, ECE before and after calibration."""
    labels = [a.correct for a in answers]
    out: dict = {"n": len(answers), "accuracy": statistics.fmean(labels) if labels else None}
    for name in SIGNALS:
        have = [(a.signals[name], a.correct) for a in answers
                if a.signals.get(name) is not None]
        if len(have) == len(answers):
            out[f"auroc {name}"] = auroc([s for s, _ in have], [y for _, y in have])
    scored = [a for a in answers if a.confidence is not None]
    out["auroc confidence"] = auroc([a.confidence for a in scored],
                                    [a.correct for a in scored])
    out["ece uncalibrated"] = ece([a.uncalibrated for a in scored if a.uncalibrated is not None],
                                  [a.correct for a in scored if a.uncalibrated is not None])
    out["ece calibrated"] = ece([a.confidence for a in scored], [a.correct for a in scored])
    floor = ece_floor([a.confidence for a in scored])
    out["ece floor"], out["ece floor p95"] = floor if floor else (None, None)
    out["calibrated share"] = statistics.fmean(a.calibrated for a in scored) if scored else None
    return out


def risk_coverage(answers: list[Answer]) -> list[tuple[float, float, float]]:
    """(threshold, coverage, accuracy of the answers kept) for every distinct confidence."""
    ranked = sorted((a for a in answers if a.confidence is not None),
                    key=lambda a: a.confidence, reverse=True)
    curve, right = [], 0
    for i, a in enumerate(ranked, 1):
        right += a.correct
        if i == len(ranked) or ranked[i].confidence != a.confidence:
            curve.append((a.confidence, i / len(ranked), right / i))
    return curve


def compute(answers: list[Answer]) -> dict:
    configs = list(dict.fromkeys(a.config for a in answers))
    groups = {}
    for config in configs:
        rows = [a for a in answers if a.config == config]
        groups[config] = {
            "all": {**quality(rows), "tokens": statistics.fmean(a.tokens for a in rows)},
            **{f"task {t}": quality([a for a in rows if a.task == t])
               for t in sorted({a.task for a in rows})},
            **{f"bucket {b}": quality([a for a in rows if a.bucket == b])
               for b in sorted({a.bucket for a in rows})}}
    return {"configs": groups,
            "risk_coverage": {c: risk_coverage([a for a in answers if a.config == c])
                              for c in configs},
            "gate_bounds": gate_bounds(answers)}


def targets(results: dict) -> list[str]:
    c = results["configs"]
    lines = []

    def ok(flag: bool) -> str:
        return "**met**" if flag else "**missed**"

    for name, row in c.items():
        a, e = row["all"].get("auroc confidence"), row["all"].get("ece calibrated")
        if a is not None and e is not None:
            floor, p95 = row["all"].get("ece floor"), row["all"].get("ece floor p95")
            noise = "" if floor is None else (
                f"; a perfectly calibrated confidence would show {floor:.3f} on these "
                f"{row['all']['n']} answers, 95% of draws <= {p95:.3f}"
                + (": within sampling noise" if e > TARGET_ECE and e <= p95 else ""))
            lines.append(f"- {name}: confidence AUROC {a:.3f} (target >= {TARGET_AUROC}: "
                         f"{ok(a >= TARGET_AUROC)}), ECE {e:.3f} (target <= {TARGET_ECE}: "
                         f"{ok(e <= TARGET_ECE)}{noise})")
    sc = c.get(f"self_consistency/{N}")
    for name in [n for n in c if n.startswith(f"deepconf online/{N}")] if sc else []:
        online = c[name]
        acc, tok = online["all"]["accuracy"], online["all"]["tokens"] / sc["all"]["tokens"]
        lines.append(f"- {name}: accuracy {acc:.3f} against self_consistency/{N}'s "
                     f"{sc['all']['accuracy']:.3f}, at {tok:.2f}x its tokens (target: >= at <= "
                     f"0.5x): {ok(acc >= sc['all']['accuracy'] and tok <= 0.5)}")
    fixed = {n: c[n]["all"] for n in FIXED if n in c}
    for name in [n for n in c if n.startswith("auto, escalating")] if fixed else []:
        gated = c[name]
        best_name, best = max(fixed.items(), key=lambda kv: kv[1]["accuracy"])
        acc, tok = gated["all"]["accuracy"], gated["all"]["tokens"] / best["tokens"]
        lines.append(f"- {name}: accuracy {acc:.3f} against the best fixed strategy's "
                     f"({best_name}) {best['accuracy']:.3f}, at {tok:.2f}x its tokens (target: "
                     f">= at <= 0.4x): {ok(acc >= best['accuracy'] and tok <= 0.4)}")
    return lines


def gate_bounds(answers: list[Answer], share: float = 0.4) -> list[dict]:
    """What any confidence gate over greedy could reach, from the fixed configurations' own
    answers to the same problems: for each second stage X, keep greedy's answer when its
    confidence reaches t, else take X's (tokens: greedy's plus X's). Per X, the most accurate
    threshold within `share` of the best fixed strategy's tokens, and the oracle gate that
    escalates exactly the problems greedy got wrong, the most any gate on greedy can do."""
    by = {c: {a.problem: a for a in answers if a.config == c} for c in FIXED}
    greedy = by.get("greedy")
    fixed = {c: rows for c, rows in by.items() if rows}
    if not greedy or len(fixed) < 2:
        return []
    best = max(fixed, key=lambda c: statistics.fmean(a.correct for a in fixed[c].values()))
    cap = share * statistics.fmean(a.tokens for a in fixed[best].values())
    out = []
    for second, rows in fixed.items():
        if second == "greedy" or set(rows) != set(greedy):
            continue

        def gated(escalate) -> tuple[float, float]:
            picks = [(rows[p] if escalate(g) else g, g.tokens + (rows[p].tokens
                                                                 if escalate(g) else 0))
                     for p, g in greedy.items()]
            return (statistics.fmean(a.correct for a, _ in picks),
                    statistics.fmean(t for _, t in picks))

        thresholds = sorted({g.confidence for g in greedy.values() if g.confidence is not None})
        points = [(t, *gated(lambda g, t=t: g.confidence is None or g.confidence < t))
                  for t in [0.0, *thresholds, 1.01]]
        within = [pt for pt in points if pt[2] <= cap]
        t, acc, tok = max(within, key=lambda pt: (pt[1], -pt[2])) if within else (None,) * 3
        oracle_acc, oracle_tok = gated(lambda g: not g.correct)
        wrong = [p for p, g in greedy.items() if not g.correct]
        out.append({"second": second, "best": best, "cap_tokens": cap, "threshold": t,
                    "accuracy": acc, "tokens": tok, "oracle_accuracy": oracle_acc,
                    "oracle_tokens": oracle_tok,
                    "fixes": statistics.fmean(rows[p].correct for p in wrong) if wrong else None,
                    "best_accuracy": statistics.fmean(a.correct for a in fixed[best].values())})
    return out


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def report(results: dict, meta: dict) -> str:
    c = results["configs"]
    png = meta.get("figure", "metacognition.png")
    lines = ["# Meta-cognition (benchmarks/metacognition.py)", "",
             f"Command: `{meta['command']}`  ",
             f"Run: {meta['started']} on {meta['machine']}, {meta['wall_min']:.0f} min; "
             f"{meta['problems']} fresh problems (seed {METACOGNITION_SEED}+), the demo server "
             "with its default verifiers and committed calibration; chat requests at "
             "temperature 0 with max_tokens 256 (searches sample their branches at the "
             "server's search temperature)." + (f" Relabelled since: {meta['relabelled']}."
                                                 if meta.get("relabelled") else "")
             + (f" Before: {meta['before']}." if meta.get("before") else ""),
             "", "## Targets", "", *targets(results), "",
             "## Accuracy, tokens and how well confidence ranks and calibrates", "",
             "| config | accuracy | tokens | AUROC conf. | " + " | ".join(
                 f"AUROC {s}" for s in SIGNALS) + " | ECE uncal. | ECE cal. | calibrated |",
             "|---|---:|---:|---:|" + "---:|" * len(SIGNALS) + "---:|---:|---:|"]
    for name, row in c.items():
        a = row["all"]
        lines.append(f"| {name} | {_cell(a['accuracy'])} | {a['tokens']:.0f} | "
                     f"{_cell(a.get('auroc confidence'))} | " + " | ".join(
                         _cell(a.get(f"auroc {s}")) for s in SIGNALS)
                     + f" | {_cell(a.get('ece uncalibrated'))} | {_cell(a.get('ece calibrated'))}"
                     f" | {_cell(a.get('calibrated share'), 2)} |")
    lines += ["", "## Per task and per difficulty bucket (confidence AUROC / ECE, accuracy)",
              "", "| config | group | n | accuracy | AUROC conf. | ECE cal. |",
              "|---|---|---:|---:|---:|---:|"]
    for name, row in c.items():
        for group, q in row.items():
            if group != "all":
                lines.append(f"| {name} | {group} | {q['n']} | {_cell(q['accuracy'])} | "
                             f"{_cell(q.get('auroc confidence'))} | "
                             f"{_cell(q.get('ece calibrated'))} |")
    bounds = results.get("gate_bounds") or []
    if bounds:
        lines += ["", "## What any gate over greedy could reach", "",
                  "From the fixed configurations' answers to the same problems (not a run of "
                  "its own): greedy's answer kept above a confidence threshold, else the second "
                  "stage's; tokens are greedy's plus the second stage's. `fixes`: the share of "
                  "greedy's wrong answers the second stage gets right. The oracle escalates "
                  f"exactly greedy's wrong answers. Target: >= {bounds[0]['best']}'s accuracy "
                  f"{bounds[0]['best_accuracy']:.3f} within 0.4x its tokens "
                  f"({bounds[0]['cap_tokens']:.0f}).", "",
                  "| second stage | fixes | best gate within 0.4x: threshold | accuracy | tokens "
                  "| oracle gate: accuracy | tokens |", "|---|---:|---:|---:|---:|---:|---:|"]
        for b in bounds:
            lines.append(f"| {b['second']} | {_cell(b['fixes'], 2)} | {_cell(b['threshold'], 2)}"
                         f" | {_cell(b['accuracy'])} | {_cell(b['tokens'], 0)} | "
                         f"{_cell(b['oracle_accuracy'])} | {b['oracle_tokens']:.0f} |")
    lines += ["", "## Selective answering (risk-coverage)", "",
              "Answering only above a confidence threshold: the accuracy of the answers kept "
              f"at each coverage ([{png}]({png}), right).", "",
              "| config | coverage 100% | 80% | 60% | 40% | 20% |", "|---|---:|---:|---:|---:|---:|"]
    for name, curve in results["risk_coverage"].items():
        cells = []
        for cover in (1.0, 0.8, 0.6, 0.4, 0.2):
            kept = [acc for _, cov, acc in curve if cov <= cover + 1e-9]
            cells.append(_cell(kept[-1]) if kept else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"![accuracy against tokens; risk-coverage]({png})", ""]
    return "\n".join(lines)


def figure(results: dict, path: Path) -> None:
    from benchmarks.harness.plots import plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, row in results["configs"].items():
        a = row["all"]
        left.scatter(a["tokens"], a["accuracy"])
        left.annotate(name, (a["tokens"], a["accuracy"]), fontsize=7)
    left.set_xscale("log")
    left.set_xlabel("completion tokens per problem (log)")
    left.set_ylabel("accuracy")
    left.set_title("accuracy against tokens")
    for name, curve in results["risk_coverage"].items():
        if name in ("greedy", f"deepconf online/{N}", "beam/3", "auto, escalating"):
            right.plot([cov for _, cov, _ in curve], [acc for _, _, acc in curve], label=name)
    right.set_xlabel("coverage (share answered)")
    right.set_ylabel("accuracy of the answered")
    right.set_title("selective answering")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, METACOGNITION_SEED)
    parser.set_defaults(per_level=10, countdown=60)
    parser.add_argument("--configs", nargs="+", default=None, metavar="NAME",
                        help="config names, each one argument (names hold commas and spaces: "
                             "quote them; default: all)")
    parser.add_argument("--out", default="metacognition")
    parser.add_argument("--from-json", default=None,
                        help="recompute the tables from a saved run's answers")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        answers, meta = [Answer(**a) for a in saved["answers"]], saved["meta"]
    else:
        unknown = set(args.configs or ()) - {n for n, _ in CONFIGS}
        if unknown:
            parser.error(f"--configs: unknown {sorted(unknown)} (known: "
                         f"{'; '.join(n for n, _ in CONFIGS)})")
        configs = [(n, r) for n, r in CONFIGS if args.configs is None or n in args.configs]
        problems = load_problems(args.per_level, args.countdown, args.seed)
        started = time.time()
        port = free_port()
        log = RESULTS / "logs" / "metacognition-server.log"
        command = ["-m", "server", "--model", args.model, "--port", str(port),
                   "--log-level", "warning", *UNBOUNDED_ADMISSION]
        with running_server(command, port, log, timeout_s=600) as url:
            answers = asyncio.run(run(url, problems, configs, args.concurrency))
        meta = {"command": shlex.join(["python", "-m", "benchmarks", "metacognition",
                                       *sys.argv[1:]]),
                "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                "wall_min": (time.time() - started) / 60, "problems": len(problems)}
    meta["figure"] = f"{args.out}.png"  # the report links the figure written beside it
    results = compute(answers)
    publish(args.out, {"meta": meta, **results, "answers": [asdict(a) for a in answers]},
            results, meta, figure, report, RESULTS)


if __name__ == "__main__":
    main()
