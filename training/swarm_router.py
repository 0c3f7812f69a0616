"""Train the swarm's learned router: which model (the base or a specialist adapter) answers which
kind of sub-problem right, measured, then fitted from the question's text.

    python -m training.swarm_router --config training/configs/swarm_router.yaml

1. Sub-problems of every demo family (arithmetic levels 1-8, countdown levels 1-5: what the
   composite task's parts are) from the `swarm_router` seed stream, `--seed` for training and
   `--seed + 1` held out.
2. Each model answers each greedily (vLLM offline, one batched generate per model); the exact
   checker labels the answers.
3. Per model, a logistic regression over hashed character n-grams predicts a right answer
   (training.components.swarm_router_fit); the router sends a sub-problem to the likeliest.
Held-out routing accuracy is reported against each model alone, against routing by family to
the family's specialist (the oracle the benchmark uses), and against per-model likelihood
routing (the alternative the issue names: each sub-problem to the model under which its
question is most likely, its prompt's mean token log-probability, measured in step 2: one
prompt pass per model per sub-problem, where the classifier costs none). Labels are kept
(`--labels` refits from them without measuring).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from training.components.config import parse_with_config
from training.components.problems import selector_problems
from training.components.seeds import problem_seed
from training.tasks import completion_prompt, get_task

BASE = "base"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.swarm_router",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/demo/base")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME=PATH",
                   help="a specialist to measure (repeat)")
    p.add_argument("--task", action="append", default=[], metavar="SELECTOR",
                   help="sub-problem families and levels (arithmetic/1-8, countdown/1-5)")
    p.add_argument("--problems", type=int, default=400, help="training problems per selector")
    p.add_argument("--held-out", type=int, default=200, help="held-out problems per selector")
    p.add_argument("--seed", type=int, default=0, help="in the swarm_router stream")
    p.add_argument("--ngrams", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--buckets", type=int, default=2048)
    p.add_argument("--l2", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--labels", help="refit from these measured labels (skip measuring)")
    p.add_argument("--labels-out", default="runs/swarm_router/labels.jsonl")
    p.add_argument("--out", default="models/demo/swarm_router.json")
    return p


def measure(args: argparse.Namespace) -> list[dict]:
    """One row per (split, problem): its question, family, level and which models solved it."""
    from training.components.offline_llm import make_llm
    from vllm import SamplingParams
    from vllm.lora.request import LoRARequest

    splits = {"train": (args.seed, args.problems), "held_out": (args.seed + 1, args.held_out)}
    problems = [(split, p) for split, (seed, count) in splits.items() for sel in args.task
                for p in selector_problems(sel, problem_seed("swarm_router", seed), count)]
    llm = make_llm(args.model, max_model_len=512, seed=0, enable_lora=True, max_lora_rank=16,
                   max_loras=1)
    # the answer, and the prompt's own tokens' logprobs (likelihood routing), in one pass
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, prompt_logprobs=0)
    prompts = [completion_prompt(p) for _, p in problems]
    rows = [{"split": s, "question": p.prompt, "task": p.task, "level": p.difficulty,
             "solved": {}, "loglik": {}} for s, p in problems]
    models = [(BASE, None), *[spec.split("=", 1) for spec in args.adapter]]
    for i, (name, path) in enumerate(models):
        lora = None if path is None else LoRARequest(name, i, path)
        start = time.time()
        outputs = llm.generate(prompts, params, lora_request=lora)
        for row, (_, problem), out in zip(rows, problems, outputs):
            row["solved"][name] = get_task(problem.task).check(problem, out.outputs[0].text)
            row["loglik"][name] = mean_logprob(out.prompt_token_ids, out.prompt_logprobs)
        print(f"{name}: {len(prompts)} answers in {time.time() - start:.0f} s")
    return rows


def mean_logprob(token_ids: list[int], prompt_logprobs: list) -> float:
    """The mean log-probability of a prompt's tokens after the first (vLLM's prompt_logprobs:
    one {token id: Logprob} per position, None for the first)."""
    values = [step[t].logprob for t, step in zip(token_ids, prompt_logprobs) if step]
    return sum(values) / max(len(values), 1)


def evaluate(router_json: dict, rows: list[dict], oracle: dict[str, str]) -> dict:
    from search.swarm.router import LearnedRouter
    from training.components.swarm_router_fit import routing_accuracy

    router = LearnedRouter.from_json(router_json)
    models = router.models
    solved = {m: [r["solved"][m] for r in rows] for m in models}
    chosen = [router.choose(r["question"], models).model for r in rows]
    report = {"n": len(rows), "learned": routing_accuracy(chosen, solved),
              "oracle_by_family": routing_accuracy(
                  [oracle.get(r["task"], BASE) for r in rows], solved),
              "best_per_question": sum(any(r["solved"].values()) for r in rows) / len(rows),
              "alone": {m: routing_accuracy([m] * len(rows), solved) for m in models},
              "routed_to": {m: chosen.count(m) for m in models}}
    if all(set(r.get("loglik", {})) >= set(models) for r in rows):
        likeliest = [max(models, key=lambda m: r["loglik"][m]) for r in rows]
        report["likelihood"] = routing_accuracy(likeliest, solved)
        report["likelihood_routed_to"] = {m: likeliest.count(m) for m in models}
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_with_config(build_parser(), argv)
    from training.components.swarm_router_fit import fit_router

    if args.labels:
        rows = [json.loads(line) for line in Path(args.labels).read_text().splitlines()]
    else:
        rows = measure(args)
        Path(args.labels_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.labels_out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    train = [r for r in rows if r["split"] == "train"]
    held = [r for r in rows if r["split"] == "held_out"]
    models = list(train[0]["solved"])
    start = time.time()
    router = fit_router([r["question"] for r in train],
                        {m: [r["solved"][m] for r in train] for m in models},
                        args.ngrams, args.buckets, l2=args.l2, steps=args.steps)
    # the oracle: each family to the specialist named like it (the demo adapters are)
    oracle = {r["task"]: r["task"] for r in rows if r["task"] in models}
    router["metrics"] = {"train": evaluate(router, train, oracle),
                         "held_out": evaluate(router, held, oracle),
                         "fit_seconds": round(time.time() - start, 1)}
    router["command"] = "python -m training.swarm_router " + " ".join(sys.argv[1:])
    router["models_measured"] = {"base": args.model, **dict(
        spec.split("=", 1) for spec in args.adapter)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(router) + "\n")
    print(json.dumps(router["metrics"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
