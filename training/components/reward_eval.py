"""Reward models judged on sampled solutions (`training.evaluate_rewards`): a sample with its exact
labels and its PRM / ORM scores, the scores read from vLLM's logprobs, best-of-N picks (by PRM,
ORM, majority or weighted vote) and the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field

from search.answers import extract_answer, vote
from training.components.metrics import auroc
from training.tasks import Problem
from verifiers.label_reading import TagReading, find_tags, prompt_encoder
from verifiers.reward_format import good_probability, outcome_query, step_query, written_path

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


def tag_scores(prompt_logprobs, reading: TagReading) -> list[float | None]:
    """P(GOOD) at each tag `reading` found in a path, from vLLM's per-position top-k prompt
    logprobs (prompt_logprobs[i] is the distribution of token i given the tokens before it:
    the label after the tag at p is read at p + 1); None for a step to read from its own
    query (its tag merges with what follows it, or nothing follows it)."""
    return [None if p is None or p + 1 >= len(prompt_logprobs)
            else good_probability(_named(prompt_logprobs[p + 1])) for p in reading.positions]


def _named(position) -> dict[str, float]:
    """vLLM's {token id: Logprob} as the engines hand it to the verifiers: {token: logprob}."""
    return {lp.decoded_token: lp.logprob for lp in position.values()}


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
    """Each sample's PRM and ORM scores, read as the `prm` and `orm` verifiers read them. PRM:
    one request per path (its ids as the engine tokenizes the text), prompt logprobs read at
    the tags `find_tags` finds; a step whose tag is not found, a next-token request of its own
    query. ORM: the next token after the tag that follows the whole solution."""
    encode = prompt_encoder(tokenizer)
    readings = [find_tags(written_path(s.problem.prompt, s.steps), encode) for s in samples]
    prm_out = llm.generate([{"prompt_token_ids": r.ids} for r in readings],
                           sampling_cls(max_tokens=1, prompt_logprobs=TOP_K), lora_request=prm)
    lone = []
    for sample, reading, out in zip(samples, readings, prm_out):
        sample.prm = tag_scores(out.prompt_logprobs, reading)
        lone += [(sample, i) for i, score in enumerate(sample.prm) if score is None]
    for (sample, i), score in zip(lone, _next_token(
            llm, [step_query(s.problem.prompt, s.steps[:i + 1]) for s, i in lone], prm,
            sampling_cls)):
        sample.prm[i] = score
    orm_scores = _next_token(llm, [outcome_query(s.problem.prompt, s.steps) for s in samples],
                             orm, sampling_cls)
    for sample, score in zip(samples, orm_scores):
        sample.orm = score


def _next_token(llm, queries: list[str], adapter, sampling_cls) -> list[float]:
    if not queries:
        return []
    out = llm.generate(queries, sampling_cls(max_tokens=1, logprobs=TOP_K), lora_request=adapter)
    return [good_probability(_named(o.outputs[0].logprobs[0])) for o in out]
