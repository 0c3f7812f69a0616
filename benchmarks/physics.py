"""Physics: greedy, PRM beam, rules beam and fused symbolic steps on fresh physics problems.

    python -m benchmarks.physics [--per-level 10] [--concurrency 8] [--adapter DIR]

One server (the demo base, its PRM, and the `physics` adapter) answers fresh problems of the
physics task (`training.tasks.physics`, levels 1-4, seed stream 920_000+, every prompt the
adapter was trained on left out) through the HTTP API, with the base and with the adapter:

- greedy;
- beam/3 with the PRM;
- beam/3 with PRM x units x physics (the rules);
- the same with `symbolic_steps` (the fused search: the symbolic engine's computed step beside
  the model's own).

Accuracy by the task's exact checker; a dimensional error is an Answer line in another
dimension than the one asked, or without a unit pint reads (a bare number), and is also counted
for any step the `units` verifier scores 0. Writes benchmarks/results/physics.md, .json, .png.
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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

from benchmarks.harness.chat import chat_request
from benchmarks.harness.servers import SERVED_NAME, UNBOUNDED_ADMISSION, install_verifier_plugins
from tests.servers import free_port, running_server
from training.tasks import physics as task
from training.tasks.base import Problem
from verifiers.physics import notation, units
from verifiers.protocol import StepItem

RESULTS = Path(__file__).parent / "results"
SEED = 920_000
ADAPTER = Path("models/demo/adapters/physics")
PLUGINS = {"units": "verifiers.physics.units:UnitsVerifier",
           "physics": "verifiers.physics.laws:PhysicsVerifier"}
PRM = {"prm": 1.0}
RULES = {"prm": 1.0, "units": 1.0, "physics": 1.0}
CONFIGS: list[tuple[str, dict | None]] = [
    ("greedy", {"strategy": "greedy"}),
    ("beam/3 prm", {"strategy": "beam", "beam_width": 3, "verifiers": PRM}),
    ("beam/3 prm x units x physics", {"strategy": "beam", "beam_width": 3, "verifiers": RULES}),
    ("fused: beam/3 rules + symbolic steps", {"strategy": "beam", "beam_width": 3,
                                              "verifiers": RULES, "symbolic_steps": True}),
]
HARD = 4  # the hardest bucket: four steps before the answer


@dataclass
class Outcome:
    config: str
    model: str
    problem: str
    level: int
    correct: bool
    answered: bool  # has an Answer line
    answer_dimension_error: bool
    step_dimension_error: bool
    completion_tokens: int
    symbolic_in_answer: int
    latency_s: float
    text: str


def answer_dimension_error(problem: Problem, text: str) -> tuple[bool, bool]:
    """(has an Answer line, that line is in the wrong dimension or has no readable unit)."""
    lines = task.split_steps(text)
    if not lines or not lines[-1].startswith("Answer:"):
        return False, False
    asked = notation.read_problem(problem.prompt)
    quantity = notation.read_answer(lines[-1])
    if not quantity or asked is None:
        return True, True
    return True, quantity.dimensionality != asked.find_unit.dimensionality


def step_dimension_error(problem: Problem, text: str) -> bool:
    lines = task.split_steps(text)
    return any(units.score_item(StepItem(problem.prompt, tuple(lines[: i + 1]))) == 0.0
               for i in range(len(lines)))


def fresh_problems(per_level: int, trained: set[str]) -> list[Problem]:
    """`per_level` problems of each level whose prompts the adapter never saw."""
    out = []
    for level in task.LEVELS:
        drawn = task.generate(SEED + level, per_level * 20, level)
        fresh = list({p.prompt: p for p in drawn if p.prompt not in trained}.values())
        out += fresh[:per_level]
    return out


def trained_prompts(adapter: Path) -> set[str]:
    """The prompts of the adapter's generated training rows (its manifest's datasets and seed)."""
    from training.components.sft_data import DatasetSpec, task_rows

    manifest = json.loads((adapter / "deliberate_manifest.json").read_text())
    seed = manifest.get("train", {}).get("seed", 0)
    prompts: set[str] = set()
    for spec in map(DatasetSpec.parse, manifest.get("datasets", [])):
        if spec.task and spec.task.split("/")[0] == "physics":  # no other task's prompt collides
            prompts |= {row["prompt"].strip() for row in task_rows(spec.task, spec.count, seed)}
    return prompts


async def ask(http: httpx.AsyncClient, problem: Problem, config: str, reasoning: dict,
              model: str) -> Outcome:
    started = time.monotonic()
    r = await http.post("/v1/chat/completions",
                        json=chat_request(problem, {**reasoning, "seed": 1}, model))
    r.raise_for_status()
    body = r.json()
    text = body["choices"][0]["message"]["content"]
    answered, wrong_dimension = answer_dimension_error(problem, text)
    return Outcome(config, model, problem.id, problem.difficulty, task.check(problem, text),
                   answered, wrong_dimension, step_dimension_error(problem, text),
                   body["usage"]["completion_tokens"],
                   (body["reasoning"].get("symbolic_steps") or {}).get("in_answer", 0),
                   time.monotonic() - started, text)


async def run(url: str, problems: list[Problem], concurrency: int) -> list[Outcome]:
    gate = asyncio.Semaphore(concurrency)
    outcomes: list[Outcome] = []

    async def one(http, problem, config, reasoning, model):
        async with gate:
            return await ask(http, problem, config, reasoning, model)

    async with httpx.AsyncClient(base_url=url, timeout=900) as http:
        for model in (SERVED_NAME, "physics"):
            for config, reasoning in CONFIGS:
                started = time.monotonic()
                rows = await asyncio.gather(*(one(http, p, config, reasoning, model)
                                              for p in problems))
                outcomes += rows
                print(f"{model:8s} {config:38s} accuracy "
                      f"{sum(o.correct for o in rows) / len(rows):.1%} "
                      f"dimension errors {sum(o.answer_dimension_error for o in rows)} "
                      f"({time.monotonic() - started:.0f} s)", flush=True)
    return outcomes


def summarize(rows: list[Outcome]) -> dict:
    n = len(rows)
    return {"n": n, "accuracy": sum(o.correct for o in rows) / n,
            "answer_dimension_errors": sum(o.answer_dimension_error for o in rows) / n,
            "step_dimension_errors": sum(o.step_dimension_error for o in rows) / n,
            "answered": sum(o.answered for o in rows) / n,
            "tokens": statistics.fmean(o.completion_tokens for o in rows),
            "symbolic_in_answer": statistics.fmean(o.symbolic_in_answer for o in rows)}


def table(outcomes: list[Outcome]) -> dict:
    """{model: {config: {level or "all": summary}}}."""
    out: dict = {}
    for model in (SERVED_NAME, "physics"):
        for config, _ in CONFIGS:
            rows = [o for o in outcomes if o.model == model and o.config == config]
            groups = {str(level): [o for o in rows if o.level == level] for level in task.LEVELS}
            groups["all"] = rows
            out.setdefault(model, {})[config] = {k: summarize(v) for k, v in groups.items() if v}
    return out


def targets(results: dict) -> list[str]:
    """The targets, judged on the model trained for the task (the `physics` adapter). The base
    never saw the task's format: it answers nothing right whatever scores its paths, so its
    figures are listed as a reference, not judged (no verifier teaches a model a format)."""
    lines = []
    for model, configs in results.items():
        judged = model != SERVED_NAME
        ruled = [c for c, r in CONFIGS if "units" in (r or {}).get("verifiers", {})]
        wrong = {c: configs[c]["all"]["answer_dimension_errors"] * configs[c]["all"]["n"]
                 for c in ruled}
        greedy = configs["greedy"][str(HARD)]["accuracy"]
        best_name = max(ruled, key=lambda c: configs[c][str(HARD)]["accuracy"])
        best = configs[best_name][str(HARD)]["accuracy"]
        gain = (best - greedy) * 100
        label = model if judged else f"{model} (the base, a reference: not judged)"
        lines.append(f"- {label}: dimensionally wrong final answers with the units verifier on: "
                     + ", ".join(f"{c} {v:.0f}" for c, v in wrong.items())
                     + (f" (target 0): **{'met' if not any(wrong.values()) else 'missed'}**"
                        if judged else ""))
        lines.append(f"- {label}: level {HARD}, best search with the rules ({best_name}) "
                     f"{best:.1%} vs greedy {greedy:.1%}: {gain:+.1f} points"
                     + (f" (target +15): **{'met' if gain >= 15 else 'missed'}**"
                        if judged else ""))
    return lines


def figure(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    levels = [str(level) for level in task.LEVELS]
    for ax, (model, configs) in zip(axes, results.items()):
        for config, rows in configs.items():
            ax.plot(levels, [rows[lv]["accuracy"] if lv in rows else None for lv in levels],
                    marker="o", label=config)
        ax.set_title(f"model: {model}")
        ax.set_xlabel("level (steps before the answer)")
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("accuracy (exact checker)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(results: dict, args: argparse.Namespace, n_problems: int, wall_s: float,
           png: Path) -> str:
    lines = ["# Physics: rules and fused symbolic steps", "",
             f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({platform.machine()}), {wall_s / 60:.1f} min in all. Command: `python -m "
             f"benchmarks.physics --per-level {args.per_level} --concurrency {args.concurrency}`.",
             "", f"Problems: {n_problems} fresh physics problems ({args.per_level} per level 1-4, "
             f"seed stream {SEED}+, none of the adapter's training prompts), chat requests with "
             "max_tokens 256 and seed 1, for the base (`demo`) and the `physics` adapter.", "",
             "## Targets", "", *targets(results), "", f"![accuracy by level]({png.name})", ""]
    for model, configs in results.items():
        lines += [f"## Model: {model}", "",
                  "| config | " + " | ".join(f"level {lv}" for lv in task.LEVELS)
                  + " | all | answer in a wrong dimension | a step in a wrong dimension "
                    "| answered | tokens | symbolic steps in the answer |",
                  "|---" * 11 + "|"]
        for config, rows in configs.items():
            a = rows["all"]
            lines.append(f"| {config} | " + " | ".join(
                f"{rows[str(lv)]['accuracy']:.0%}" if str(lv) in rows else "-"
                for lv in task.LEVELS)
                + f" | {a['accuracy']:.1%} | {a['answer_dimension_errors']:.1%} | "
                  f"{a['step_dimension_errors']:.1%} | {a['answered']:.0%} | {a['tokens']:.0f} "
                  f"| {a['symbolic_in_answer']:.2f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> None:
    problems = fresh_problems(args.per_level, trained_prompts(args.adapter))
    port = free_port()
    plugins = install_verifier_plugins(Path(tempfile.mkdtemp()), "deliberate-physics-bench",
                                       PLUGINS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(plugins), str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--log-level", "warning", "--lora-modules", f"physics={args.adapter.resolve()}",
               # an adapter trained elsewhere (--adapter DIR) is served from where it lies
               "--adapter-roots", "models", str(args.adapter.resolve().parent)]
    started = time.monotonic()
    with running_server(command, port, RESULTS / "logs" / "physics-server.log", env=env) as url:
        outcomes = await run(url, problems, args.concurrency)
    wall = time.monotonic() - started
    results = table(outcomes)
    png = figure(results, RESULTS / "physics.png")
    (RESULTS / "physics.json").write_text(json.dumps(
        {"results": results, "outcomes": [asdict(o) for o in outcomes]}, indent=1))
    (RESULTS / "physics.md").write_text(report(results, args, len(problems), wall, png))
    print((RESULTS / "physics.md").read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.physics",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--per-level", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--adapter", type=Path, default=ADAPTER)
    asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
