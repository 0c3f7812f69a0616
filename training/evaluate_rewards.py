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
Each path is scored in one request: the tagged path with prompt logprobs, read at the tags.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from dataclasses import dataclass, field

from training.prm import auroc
from training.task_selector import parse_selector, worked_problems
from training.tasks import Problem, completion_prompt, get_task, solvable_labels, step_labels
from training.tasks.base import TRAIN_SEED_BASE, extract_answer, split_steps
from verifiers.reward_format import STEP_TAG, good_probability, step_query, tagged_path

TOP_K = 20


@dataclass
class Sample:
    problem: Problem
    text: str
    steps: list[str]
    correct: bool
    step_labels: list[int]
    solvable_labels: list[int]
    prm: list[float] = field(default_factory=list)  # P(GOOD) per step
    orm: float = 0.5


def tag_scores(prompt_logprobs, text: str, tokenizer) -> list[float]:
    """P(GOOD) at each tag of a tagged path, from per-position top-k prompt logprobs.

    prompt_logprobs[i] is the distribution of token i given tokens < i, so the label after the
    tag at position p is read at i = p + 1 (the newline that follows it in the text)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    tag_id = tokenizer.convert_tokens_to_ids(STEP_TAG[-1])
    scores = []
    for position, token in enumerate(ids):
        if token == tag_id and position + 1 < len(prompt_logprobs):
            top = prompt_logprobs[position + 1]
            scores.append(good_probability({lp.decoded_token: lp.logprob for lp in top.values()}))
    return scores


def majority_pick(samples: list[Sample]) -> Sample:
    answers = Counter(extract_answer(s.text) for s in samples if extract_answer(s.text))
    if not answers:
        return samples[0]
    best = answers.most_common(1)[0][0]
    return next(s for s in samples if extract_answer(s.text) == best)


def weighted_pick(samples: list[Sample], weight) -> Sample:
    """The best-weighted sample of the answer whose samples' `weight`s sum highest (Li et al.
    2023's weighted vote; a sample without an answer votes for nothing). The best, not the
    first: on countdown an invalid path can state the right number."""
    totals: Counter = Counter()
    for s in samples:
        if answer := extract_answer(s.text):
            totals[answer] += weight(s)
    if not totals:
        return samples[0]
    best = totals.most_common(1)[0][0]
    return max((s for s in samples if extract_answer(s.text) == best), key=weight)


def prm_path(sample: Sample) -> float:
    return min(sample.prm, default=0.0)


def summarise(by_problem: dict[str, list[Sample]]) -> dict:
    samples = [s for group in by_problem.values() for s in group]
    scores = [p for s in samples for p in s.prm]
    labels = [y for s in samples for y in s.step_labels[: len(s.prm)]]
    solvable = [y for s in samples for y in s.solvable_labels[: len(s.prm)]]
    wins = pairs = 0.0
    for group in by_problem.values():
        for right in (s for s in group if s.correct):
            for wrong in (s for s in group if not s.correct):
                wins += (right.orm > wrong.orm) + 0.5 * (right.orm == wrong.orm)
                pairs += 1

    def best_of_n(pick) -> float:
        return sum(pick(group).correct for group in by_problem.values()) / len(by_problem)

    return {
        "problems": len(by_problem), "samples": len(samples),
        "sample_accuracy": sum(s.correct for s in samples) / len(samples),
        "oracle": best_of_n(lambda g: max(g, key=lambda s: s.correct)),
        "prm_step_auroc": auroc(scores, labels), "prm_steps": len(scores),
        "prm_solvable_auroc": auroc(scores, solvable),
        "orm_pairwise_accuracy": wins / pairs if pairs else float("nan"), "orm_pairs": pairs,
        "best_of_n_prm": best_of_n(lambda g: max(g, key=prm_path)),
        "best_of_n_orm": best_of_n(lambda g: max(g, key=lambda s: s.orm)),
        "best_of_n_majority": best_of_n(majority_pick),
        "vote_prm": best_of_n(lambda g: weighted_pick(g, prm_path)),
        "vote_orm": best_of_n(lambda g: weighted_pick(g, lambda s: s.orm)),
        "vote_prm_orm": best_of_n(lambda g: weighted_pick(g, lambda s: prm_path(s) * s.orm)),
    }


def markdown(results: dict[str, dict], samples: int) -> str:
    keys = ["sample_accuracy", "best_of_n_majority", "best_of_n_prm", "best_of_n_orm",
            "vote_prm", "vote_orm", "vote_prm_orm", "oracle",
            "prm_step_auroc", "prm_solvable_auroc", "orm_pairwise_accuracy"]
    lines = ["| task | problems | " + " | ".join(keys) + " |", "|---|---:|" + "---:|" * len(keys)]
    for task, r in results.items():
        lines.append(f"| {task} | {r['problems']} | " + " | ".join(f"{r[k]:.3f}" for k in keys)
                     + " |")
    return "\n".join(lines) + f"\n\nbest_of_n: N = {samples} samples per problem.\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate_rewards",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/demo/base")
    parser.add_argument("--prm", required=True, help="PRM adapter directory")
    parser.add_argument("--orm", required=True, help="ORM adapter directory")
    parser.add_argument("--task", action="append", required=True, help="e.g. arithmetic/6-8")
    parser.add_argument("--problems", type=int, default=200, help="per task")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-tokens", type=int, default=192)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.seed >= TRAIN_SEED_BASE:
        parser.error(f"--seed must be below {TRAIN_SEED_BASE}: higher seeds make training data")
    for selector in args.task:
        parse_selector(selector)

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    llm = LLM(model=args.model, dtype="float32", max_model_len=512, seed=args.seed,
              enable_lora=True, max_lora_rank=16, max_loras=2, max_logprobs=TOP_K)
    tokenizer = llm.get_tokenizer()
    prm, orm = LoRARequest("prm", 1, args.prm), LoRARequest("orm", 2, args.orm)
    results = {}
    for selector in args.task:
        problems = [p for p, _ in worked_problems(selector, args.seed, args.problems)]
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


def score_paths(llm, samples: list[Sample], prm, orm, tokenizer, sampling_cls) -> None:
    """PRM: one request per path (prompt logprobs at every tag); ORM: next token after the tag."""
    paths = [tagged_path(s.problem.prompt, s.steps) for s in samples]
    prm_out = llm.generate(paths, sampling_cls(max_tokens=1, prompt_logprobs=TOP_K),
                           lora_request=prm)
    for sample, path, out in zip(samples, paths, prm_out):
        sample.prm = tag_scores(out.prompt_logprobs, path, tokenizer)
    queries = [step_query(s.problem.prompt, ["\n".join(s.steps)]) for s in samples]
    orm_out = llm.generate(queries, sampling_cls(max_tokens=1, logprobs=TOP_K), lora_request=orm)
    for sample, out in zip(samples, orm_out):
        top = out.outputs[0].logprobs[0]
        sample.orm = good_probability({lp.decoded_token: lp.logprob for lp in top.values()})


if __name__ == "__main__":
    main()
