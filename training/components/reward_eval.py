"""Reward models judged on sampled solutions (`training.evaluate_rewards`): a sample with its exact
labels and its PRM / ORM scores, the scores read from vLLM's logprobs, best-of-N picks (by PRM,
ORM, majority or weighted vote) and the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field

from search.answers import extract_answer, vote
from training.components.metrics import auroc
from training.tasks import Problem
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
    """The server's self-consistency vote (`search.answers.vote`, one vote per sample); no
    sample states an answer: the first."""
    voted = vote(samples, _answer, lambda s: 1.0, lambda s: 0.0)
    return voted[0] if voted else samples[0]


def weighted_pick(samples: list[Sample], weight) -> Sample:
    """The server's weighted vote (best_of_n's `weighted_vote`, Li et al. 2023): the answer
    whose samples' `weight`s sum highest, its best-weighted sample (the best, not the first: on
    countdown an invalid path can state the right number); no sample states an answer: the
    first."""
    voted = vote(samples, _answer, weight, weight)
    return voted[0] if voted else samples[0]


def _answer(sample: Sample) -> str | None:
    return extract_answer(sample.text)


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
