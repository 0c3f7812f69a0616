"""lm-eval against the server: the demo tasks as lm-eval local tasks, run through Deliberate's API.

    python -m benchmarks.eval_harness --make-data   # rewrites benchmarks/lm_eval_tasks/data/
    python -m benchmarks.eval_harness [--limit N]   # runs the three lm-eval models below

The hub's datasets are out of reach here, so the tasks (benchmarks/lm_eval_tasks/) read JSON
lines generated from the demo tasks (seed stream 550_000+, fresh). One server (the demo model,
`--default-strategy greedy` so that lm-eval measures the model, as it expects) answers:
- `local-completions`, generate_until: demo_arithmetic, demo_countdown (exact match on `Answer:`);
- `local-completions`, loglikelihood: demo_arithmetic_mc, demo_countdown_mc (echo + logprobs);
- `local-chat-completions`, generate_until: demo_arithmetic_chat, demo_countdown_chat;
and the same chat tasks once more with `reasoning: {"strategy": "auto"}` in lm-eval's
generation kwargs: Deliberate's search, evaluated by an unchanged harness.

Writes benchmarks/results/lm_eval.md (and lm_eval.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.harness.problems import load_problems
from benchmarks.harness.servers import SERVED_NAME, UNBOUNDED_ADMISSION
from tests.servers import free_port, running_server
from training.tasks import Problem, get_task

RESULTS = Path(__file__).parent / "results"
TASKS = Path(__file__).parent / "lm_eval_tasks"
LM_EVAL_SEED = 550_000
CHOICES = 4


def wrong_solutions(solution: str, rng: random.Random, count: int) -> list[str]:
    """`solution` with its last step's result replaced by a wrong one, carried into the answer:
    the error sits in the reasoning, not only in the answer line."""
    lines = solution.split("\n")
    step, answer = lines[-2], lines[-1]
    left, result = step.rsplit("=", 1)
    value = int(result)
    offsets = rng.sample([-10, -2, -1, 1, 2, 10, 100], count)
    return ["\n".join([*lines[:-2], f"{left}={value + d}", f"Answer: {value + d}"])
            for d in offsets]


def rows(problems: list[Problem], seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for problem in problems:
        right = get_task(problem.task).solution(problem)
        choices = [right, *wrong_solutions(right, rng, CHOICES - 1)]
        rng.shuffle(choices)
        out.append({"id": problem.id, "prompt": problem.prompt, "answer": problem.answer,
                    "level": problem.difficulty, "choices": choices,
                    "label": choices.index(right)})
    return out


def make_data(per_level: int, countdown: int, seed: int) -> None:
    problems = load_problems(per_level, countdown, seed)
    (TASKS / "data").mkdir(exist_ok=True)
    for task in ("arithmetic", "countdown"):
        lines = rows([p for p in problems if p.task == task], seed)
        (TASKS / "data" / f"{task}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in lines))
        print(f"{task}: {len(lines)} rows")


def evaluate(model: str, model_args: dict, tasks: list[str], limit: int | None,
             gen_kwargs: dict | None = None, chat: bool = False) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    started = time.monotonic()
    out = lm_eval.simple_evaluate(
        model=model, model_args=model_args, tasks=tasks, limit=limit,
        task_manager=TaskManager(include_path=str(TASKS)), apply_chat_template=chat,
        gen_kwargs=gen_kwargs, log_samples=False, bootstrap_iters=0)
    return {"model": model, "tasks": tasks, "wall_s": round(time.monotonic() - started, 1),
            "results": out["results"], "gen_kwargs": gen_kwargs}


def runs(url: str, model: str, limit: int | None) -> list[dict]:
    completions = {"model": SERVED_NAME, "base_url": f"{url}/v1/completions",
                   "tokenizer_backend": "huggingface", "tokenizer": model,
                   "num_concurrent": 4, "max_retries": 1, "timeout": 600}
    chat = {"model": SERVED_NAME, "base_url": f"{url}/v1/chat/completions",
            "num_concurrent": 4, "max_retries": 1, "timeout": 600}
    chat_tasks = ["demo_arithmetic_chat", "demo_countdown_chat"]
    return [
        evaluate("local-completions", completions, ["demo_arithmetic", "demo_countdown"], limit),
        evaluate("local-completions", completions, ["demo_arithmetic_mc", "demo_countdown_mc"],
                 limit),
        evaluate("local-chat-completions", chat, chat_tasks, limit, chat=True),
        evaluate("local-chat-completions", chat, chat_tasks, limit,
                 {"reasoning": {"strategy": "auto"}}, chat=True),
    ]


def score_of(metrics: dict) -> tuple[str, float]:
    for key in ("exact_match,answer", "acc,none"):
        if key in metrics:
            return key.split(",")[0], metrics[key]
    raise KeyError(f"no known metric in {sorted(metrics)}")


def report(results: list[dict], args: argparse.Namespace, wall_s: float, counts: dict) -> str:
    limit = f" --limit {args.limit}" if args.limit else ""
    lines = [
        "# lm-eval against Deliberate", "",
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()}, "
        f"{wall_s / 60:.1f} min in all, lm-eval 0.4.13. Command: "
        f"`python -m benchmarks.eval_harness{limit}`.", "",
        f"Data: {counts['arithmetic']} arithmetic and {counts['countdown']} countdown problems "
        f"(benchmarks/lm_eval_tasks/data/, seed stream {LM_EVAL_SEED}+). One server, the demo "
        "model, `--default-strategy greedy`. The multiple-choice tasks score four worked "
        "solutions, three of them with a wrong last result carried into the answer.", "",
        "| lm-eval model | task | request type | metric | score | gen_kwargs | wall s |",
        "|---|---|---|---|---:|---|---:|"]
    for run in results:
        for task in run["tasks"]:
            metric, value = score_of(run["results"][task])
            kind = "loglikelihood" if task.endswith("_mc") else "generate_until"
            extra = json.dumps(run["gen_kwargs"]) if run["gen_kwargs"] else ""
            lines.append(f"| {run['model']} | {task} | {kind} | {metric} | {value:.3f} | "
                         f"`{extra}` | {run['wall_s']} |")
    lines += ["", "The commands (the same as a user runs, with the server on port 8000):", "",
              "```", *commands(), "```"]
    return "\n".join(lines) + "\n"


def commands() -> list[str]:
    return [
        "lm_eval --model local-completions --include_path benchmarks/lm_eval_tasks \\",
        "    --tasks demo_arithmetic,demo_countdown,demo_arithmetic_mc,demo_countdown_mc \\",
        "    --model_args model=demo,base_url=http://127.0.0.1:8000/v1/completions,"
        "tokenizer_backend=huggingface,tokenizer=models/demo/base,num_concurrent=4",
        "lm_eval --model local-chat-completions --include_path benchmarks/lm_eval_tasks \\",
        "    --tasks demo_arithmetic_chat,demo_countdown_chat --apply_chat_template \\",
        "    --model_args model=demo,base_url=http://127.0.0.1:8000/v1/chat/completions,"
        "num_concurrent=4",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.eval_harness",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--make-data", action="store_true")
    parser.add_argument("--per-level", type=int, default=10, help="arithmetic rows per level")
    parser.add_argument("--countdown", type=int, default=80)
    parser.add_argument("--seed", type=int, default=LM_EVAL_SEED)
    parser.add_argument("--limit", type=int, default=None, help="rows per task (default all)")
    args = parser.parse_args(argv)
    if args.make_data:
        make_data(args.per_level, args.countdown, args.seed)
        return
    counts = {t: sum(1 for _ in open(TASKS / "data" / f"{t}.jsonl"))
              for t in ("arithmetic", "countdown")}
    port = free_port()
    command = ["-m", "server", *UNBOUNDED_ADMISSION, "--model", args.model, "--port", str(port),
               "--served-model-name", SERVED_NAME, "--log-level", "warning",
               "--default-strategy", "greedy"]
    started = time.monotonic()
    with running_server(command, port, RESULTS / "logs" / "lm-eval-server.log") as url:
        results = runs(url, args.model, args.limit)
    wall = time.monotonic() - started
    (RESULTS / "lm_eval.json").write_text(json.dumps(results, indent=1, default=str))
    (RESULTS / "lm_eval.md").write_text(report(results, args, wall, counts))
    print((RESULTS / "lm_eval.md").read_text())


if __name__ == "__main__":
    main()
