"""Evaluate reward-model adapters on fresh samples of the base model (vLLM offline).

    python -m training.evaluate_rewards --prm models/demo/adapters/prm \\
        --orm models/demo/adapters/orm --task arithmetic/6-8 --task countdown --problems 200 \\
        --samples 16 --seed 21 [--json results.json]

For each problem, `--samples` solutions are sampled from the base. Reported per task:
- PRM step AUROC: P(GOOD) of every sampled step against the exact step checker, and against
  the exact solvable labels (valid and the problem can still be solved: what a search needs);
- ORM pairwise accuracy: over (right, wrong) solution pairs of the same problem;
- best-of-N accuracy when picking by PRM (min over steps), by ORM, and by majority vote over
  answers, next to the mean sample accuracy and the oracle (some sample is right); and by
  weighted vote: the answer whose samples' scores (PRM, ORM, or their product) sum highest.
Each path is scored as the `prm` and `orm` verifiers score it (`reward_eval.score_paths`): the
tagged path in one request with prompt logprobs, read at its tags; answers are read and voted on
as the server reads and votes on them (`search.answers`).
"""

from __future__ import annotations

import argparse
import json

from training.components.config import parse_with_config
from training.components.offline_llm import make_llm
from training.components.problems import selector_errors, selector_problems
from training.components.reward_eval import TOP_K, Sample, markdown, score_paths, summarise
from training.components.seeds import SEED_RANGES, is_evaluation_seed
from training.tasks import completion_prompt, get_task, solvable_labels, step_labels
from training.tasks.base import split_steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate_rewards",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--prm", help="PRM adapter directory (required)")
    parser.add_argument("--orm", help="ORM adapter directory (required)")
    parser.add_argument("--task", action="append", default=None,
                        help="e.g. arithmetic/6-8 (required, repeatable)")
    parser.add_argument("--problems", type=int, default=200, help="per task")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", help="also write the results here")
    return parser


def check_args(args: argparse.Namespace) -> list[str]:
    errors = [f"--{name} is required" for name in ("prm", "orm", "task")
              if not getattr(args, name)]
    if not is_evaluation_seed(args.seed):
        errors.append(f"--seed must be below {SEED_RANGES['evaluation'].stop}: higher seeds make "
                      "training data")
    return errors + selector_errors(args.task or [])


def main(argv: list[str] | None = None) -> dict:
    parser = build_parser()
    args = parse_with_config(parser, argv)
    errors = check_args(args)
    if errors:
        parser.error("; ".join(errors))
    from vllm import SamplingParams  # slow import, after argument errors
    from vllm.lora.request import LoRARequest

    llm = make_llm(args.model, max_model_len=512, seed=args.seed, enable_lora=True,
                   max_lora_rank=16, max_loras=2, max_logprobs=TOP_K)
    tokenizer = llm.get_tokenizer()
    prm, orm = LoRARequest("prm", 1, args.prm), LoRARequest("orm", 2, args.orm)
    results = {}
    for selector in args.task:
        problems = selector_problems(selector, args.seed, args.problems)
        sampling = SamplingParams(n=args.samples, temperature=args.temperature,
                                  max_tokens=args.max_tokens, seed=args.seed)
        outputs = llm.generate([completion_prompt(p) for p in problems], sampling)
        by_problem: dict[str, list[Sample]] = {}
        for problem, out in zip(problems, outputs):
            task = get_task(problem.task)
            for choice in out.outputs:
                steps = split_steps(choice.text)
                by_problem.setdefault(problem.id, []).append(Sample(
                    problem, choice.text, steps, task.check(problem, choice.text),
                    step_labels(problem, steps), solvable_labels(problem, steps)))
        samples = [s for group in by_problem.values() for s in group if s.steps]
        score_paths(llm, samples, prm, orm, tokenizer, SamplingParams)
        results[selector] = summarise(by_problem)
    print(markdown(results, args.samples))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
