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
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request
from benchmarks.harness.problems import add_run_arguments, bucket_of, load_problems
from benchmarks.harness.servers import UNBOUNDED_ADMISSION
from search.calibration import uncalibrated
from tests.servers import free_port, running_server
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
METACOGNITION_SEED = 700_000
N = 8
CONFIGS: list[tuple[str, dict]] = [
    ("greedy", {"strategy": "greedy"}),
    (f"self_consistency/{N}", {"strategy": "self_consistency", "n_candidates": N}),
    (f"deepconf offline/{N}", {"strategy": "deepconf", "n_candidates": N,
                               "deepconf_mode": "offline"}),
    (f"deepconf online/{N}", {"strategy": "deepconf", "n_candidates": N,
                              "deepconf_mode": "online"}),
    (f"best_of_n/{N}", {"strategy": "best_of_n", "n_candidates": N}),
    ("beam/3", {"strategy": "beam", "beam_width": 3}),
    ("mcts/5", {"strategy": "mcts", "max_depth": 5}),
    # DeepConf's adaptive sampling: no more traces once 95% of the vote's weight agrees
    (f"deepconf online/{N}, consensus", {"strategy": "deepconf", "n_candidates": N,
                                         "deepconf_mode": "online", "consensus": 0.95}),
    (f"deepconf online/{N}, consensus, warm-up 2", {
        "strategy": "deepconf", "n_candidates": N, "deepconf_mode": "online",
        "consensus": 0.95, "warmup": 2}),
    ("auto", {"strategy": "auto"}),
    ("auto, escalating", {"strategy": "auto", "escalate": True}),
    # which last stage pays for the doubted greedy answers (reasoning.escalation_stages)
    ("auto, escalating greedy>beam", {"strategy": "auto",
                                      "escalation_stages": ["greedy", "beam"]}),
    ("auto, escalating greedy>mcts", {"strategy": "auto",
                                      "escalation_stages": ["greedy", "mcts"]}),
    ("auto, escalating greedy>deepconf", {
        "strategy": "auto", "escalation_stages": ["greedy", "deepconf"], "n_candidates": N,
        "consensus": 0.95, "warmup": 2}),
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

def auroc(scores: list[float], labels: list[bool]) -> float | None:
    """The probability that a right answer scores above a wrong one (scikit-learn's, from the
    train extra); None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if len(set(labels)) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def ece(probabilities: list[float], labels: list[bool], bins: int = 10) -> float | None:
    """Expected calibration error over `bins` equal-width bins."""
    if not probabilities:
        return None
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, y) for p, y in zip(probabilities, labels)
                  if low <= p < high or (b == bins - 1 and p == 1.0)]
        if inside:
            gap = abs(statistics.fmean(p for p, _ in inside)
                      - statistics.fmean(float(y) for _, y in inside))
            total += gap * len(inside) / len(probabilities)
    return total


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
                              for c in configs}}


def targets(results: dict) -> list[str]:
    c = results["configs"]
    lines = []

    def ok(flag: bool) -> str:
        return "**met**" if flag else "**missed**"

    for name, row in c.items():
        a, e = row["all"].get("auroc confidence"), row["all"].get("ece calibrated")
        if a is not None and e is not None:
            lines.append(f"- {name}: confidence AUROC {a:.3f} (target >= {TARGET_AUROC}: "
                         f"{ok(a >= TARGET_AUROC)}), ECE {e:.3f} (target <= {TARGET_ECE}: "
                         f"{ok(e <= TARGET_ECE)})")
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


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def report(results: dict, meta: dict) -> str:
    c = results["configs"]
    lines = ["# Meta-cognition (benchmarks/metacognition.py)", "",
             f"Command: `{meta['command']}`  ",
             f"Run: {meta['started']} on {meta['machine']}, {meta['wall_min']:.0f} min; "
             f"{meta['problems']} fresh problems (seed {METACOGNITION_SEED}+), the demo server "
             "with its default verifiers and committed calibration; chat requests at "
             "temperature 0 with max_tokens 256 (searches sample their branches at the "
             "server's search temperature).", "", "## Targets", "", *targets(results), "",
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
    lines += ["", "## Selective answering (risk-coverage)", "",
              "Answering only above a confidence threshold: the accuracy of the answers kept "
              "at each coverage ([metacognition.png](metacognition.png), right).", "",
              "| config | coverage 100% | 80% | 60% | 40% | 20% |", "|---|---:|---:|---:|---:|---:|"]
    for name, curve in results["risk_coverage"].items():
        cells = []
        for cover in (1.0, 0.8, 0.6, 0.4, 0.2):
            kept = [acc for _, cov, acc in curve if cov <= cover + 1e-9]
            cells.append(_cell(kept[-1]) if kept else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "![accuracy against tokens; risk-coverage](metacognition.png)", ""]
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
    parser.add_argument("--configs", default=None,
                        help="comma-separated config names (default: all)")
    parser.add_argument("--out", default="metacognition")
    parser.add_argument("--from-json", default=None,
                        help="recompute the tables from a saved run's answers")
    args = parser.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        answers, meta = [Answer(**a) for a in saved["answers"]], saved["meta"]
    else:
        wanted = None if args.configs is None else set(args.configs.split(","))
        configs = [(n, r) for n, r in CONFIGS if wanted is None or n in wanted]
        problems = load_problems(args.per_level, args.countdown, args.seed)
        started = time.time()
        port = free_port()
        log = RESULTS / "logs" / "metacognition-server.log"
        command = ["-m", "server", "--model", args.model, "--port", str(port),
                   "--log-level", "warning", *UNBOUNDED_ADMISSION]
        with running_server(command, port, log, timeout_s=600) as url:
            answers = asyncio.run(run(url, problems, configs, args.concurrency))
        meta = {"command": "python -m benchmarks metacognition "
                           f"--per-level {args.per_level} --countdown {args.countdown}",
                "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
                "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
                "wall_min": (time.time() - started) / 60, "problems": len(problems)}
    results = compute(answers)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(
        {"meta": meta, **results, "answers": [asdict(a) for a in answers]}, indent=1) + "\n")
    figure(results, RESULTS / f"{args.out}.png")
    text = report(results, meta)
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
