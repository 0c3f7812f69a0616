"""Rewards for GRPO (`training.rl`), as TRL reward functions: called with the prompts, the
completions and the dataset's columns (`question`, `task`, `answer`, `difficulty`, `pid`), they
return one float per completion.

- `exact`: the task's checker (1 solved, 0 not): the outcome reward.
- `orm`: the learned outcome reward model's P(GOOD) after the tag that ends the solution.
- `prm`: the learned process reward model's P(GOOD) after each step's tag, aggregated over the
  steps (`min` by default, as the server's searches do).
- `syntax`, `logic`: the server's exact verifiers, per step, aggregated the same way.
- `process`: the additive process reward, per step the weighted sum of `syntax`, `prm` and
  `logic` (`verifiers.aggregation.combine(..., "weighted_sum")`, e.g. 0.3 / 0.5 / 0.2), then
  aggregated over the steps.

A mix is several of them with weights (TRL's `reward_weights`: the weighted sum of the rewards).
The step-level ones (prm, syntax, logic, process) also give their per-step scores, for per-step
credit (`training.components.process_grpo`).

The reward models run in-process with transformers + peft (the base model with the `prm` and
`orm` adapters): logit(GOOD) - logit(BAD) from the full next-token distribution, made a score
by the function that makes the server's log-odds, read from vLLM's top-20 logprobs, a score
(`verifiers.label_reading`); the two agree whenever both labels are among the top 20, as they
are for these adapters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from training.components.label_reading import completion_steps, read_log_odds, step_rows
from training.tasks import Problem, get_task
from verifiers.aggregation import PathAggregation, aggregate_path, combine
from verifiers.builtin.logic import LogicVerifier
from verifiers.builtin.syntax import SyntaxVerifier
from verifiers.protocol import StepItem
from verifiers.label_reading import probability, prompt_encoder
from verifiers.reward_format import outcome_query, written_path

OUTCOME_REWARDS = ("exact", "orm")
STEP_REWARDS = ("prm", "syntax", "logic", "process")
REWARDS = OUTCOME_REWARDS + STEP_REWARDS
PROCESS_PARTS = ("syntax", "prm", "logic")


def parse_weights(spec: str, allowed: Sequence[str], flag: str) -> dict[str, float]:
    """'prm' -> {prm: 1}; 'exact:0.5,prm:0.5' -> {exact: 0.5, prm: 0.5}; ValueError names the fix."""
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, weight = part.partition(":")
        if name not in allowed:
            raise ValueError(f"{flag}: unknown reward {name!r}; choose from {list(allowed)}")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"{flag}: weight of {name!r} must be a number, got {weight!r}") from None
        if value < 0 or name in weights:
            raise ValueError(f"{flag}: each reward once, with a weight >= 0 ({part!r})")
        weights[name] = value
    if not weights or not any(weights.values()):
        raise ValueError(f"{flag}: name at least one reward with a positive weight, e.g. 'exact'")
    return weights


@dataclass(frozen=True)
class Episode:
    problem: Problem
    text: str
    steps: tuple[str, ...]


def episodes(completions: Sequence[str], columns: Mapping[str, Sequence]) -> list[Episode]:
    """One episode per completion, its problem rebuilt from the dataset's columns."""
    return [Episode(Problem(pid, task, question, answer, difficulty), text,
                    tuple(completion_steps(text)))
            for text, pid, task, question, answer, difficulty in zip(
                completions, columns["pid"], columns["task"], columns["question"],
                columns["answer"], columns["difficulty"])]


class RewardModels:
    """The learned reward adapters, scored in-process: one copy of the base model holding the
    adapters by name (`prm`, `orm`), frozen, in eval mode."""

    def __init__(self, base: str, adapters: Mapping[str, str], batch_size: int = 32,
                 max_length: int = 512) -> None:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self._encode = prompt_encoder(self.tokenizer)  # as the server's engine does
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        names = list(adapters)
        self.model = PeftModel.from_pretrained(model, adapters[names[0]], adapter_name=names[0])
        for name in names[1:]:
            self.model.load_adapter(adapters[name], adapter_name=name)
        self.model.eval().requires_grad_(False)
        self.names = names
        self.batch_size = batch_size
        self.max_length = max_length

    def _label_odds(self, name: str, rows: list[dict]) -> list[list[float]]:
        """P(GOOD) over {GOOD, BAD} at the tags of each row ({"input_ids", "tag_positions"})."""
        self.model.set_adapter(name)
        odds = read_log_odds(self.model, rows, self.tokenizer, self.batch_size)
        return [[probability(o) for o in row] for row in odds]

    def step_scores(self, name: str, paths: Sequence[tuple[str, Sequence[str]]]
                    ) -> list[list[float]]:
        """Each step's score by adapter `name` (a PRM): P(GOOD) after the step's tag, read
        where the `prm` verifier reads it (`step_rows`: the steps of a path from one forward
        pass, a step whose tag merges with what follows from its own query). A step past the
        model's context scores 0 (the policy should not learn to write past what the judge can
        read)."""
        rows, places = [], []
        for k, (question, steps) in enumerate(paths):
            for ids, tags in step_rows(written_path(question, steps), self._encode):
                inside = [(step, p) for step, p in tags if p < self.max_length]
                if inside:
                    rows.append({"input_ids": ids[:self.max_length],
                                 "tag_positions": [p for _, p in inside]})
                    places.append([(k, step) for step, _ in inside])
        scores = [[0.0] * len(steps) for _, steps in paths]
        for where, found in zip(places, self._label_odds(name, rows)):
            for (k, step), score in zip(where, found):
                scores[k][step] = score
        return scores

    def outcome_scores(self, name: str, paths: Sequence[tuple[str, Sequence[str]]]
                       ) -> list[float]:
        """Each solution's score by adapter `name` (an ORM): P(GOOD) after the tag that follows
        the whole solution, its query tokenized as the `orm` verifier's is; 0 for an empty
        one or one past the model's context."""
        queries = [self._encode(outcome_query(q, steps)) for q, steps in paths]
        keep = [i for i, (ids, (_, steps)) in enumerate(zip(queries, paths))
                if steps and len(ids) <= self.max_length]
        scores = [0.0] * len(paths)
        found = self._label_odds(name, [{"input_ids": queries[i],
                                         "tag_positions": [len(queries[i]) - 1]} for i in keep])
        for i, values in zip(keep, found):
            scores[i] = values[0]
        return scores


class Reward:
    """A TRL reward function (TRL names it by `__name__`). Step-level rewards also return the
    per-step scores of the completions they were last called on (`step_rewards`)."""

    step_level = False

    def __init__(self, name: str) -> None:
        self.__name__ = name

    def __call__(self, prompts, completions, **columns) -> list[float]:
        return self.score(episodes(completions, columns))

    def score(self, batch: list[Episode]) -> list[float]:
        raise NotImplementedError


class ExactReward(Reward):
    def __init__(self) -> None:
        super().__init__("exact")

    def score(self, batch: list[Episode]) -> list[float]:
        return [float(get_task(e.problem.task).check(e.problem, e.text)) for e in batch]


class OutcomeModelReward(Reward):
    def __init__(self, models: RewardModels, adapter: str = "orm") -> None:
        super().__init__("orm")
        self.models, self.adapter = models, adapter

    def score(self, batch: list[Episode]) -> list[float]:
        return self.models.outcome_scores(self.adapter,
                                          [(e.problem.prompt, e.steps) for e in batch])


class StepReward(Reward):
    """Per-step scores aggregated along the path; a completion without steps scores 0 (an
    empty path would otherwise aggregate to 1.0: a reward for saying nothing)."""

    step_level = True

    def __init__(self, name: str, aggregation: PathAggregation) -> None:
        super().__init__(name)
        self.aggregation = aggregation
        self._last: dict[tuple[str, str], list[float]] = {}

    def steps(self, batch: list[Episode]) -> list[list[float]]:
        raise NotImplementedError

    def score(self, batch: list[Episode]) -> list[float]:
        per_step = self.steps(batch)
        self._last = {(e.problem.prompt, e.text): s for e, s in zip(batch, per_step)}
        return [aggregate_path(s, self.aggregation) if s else 0.0 for s in per_step]

    def step_rewards(self, batch: list[Episode]) -> list[list[float]]:
        """The per-step scores (from the last call when it scored these completions)."""
        if all((e.problem.prompt, e.text) in self._last for e in batch):
            return [self._last[(e.problem.prompt, e.text)] for e in batch]
        return self.steps(batch)


def _items(episode: Episode) -> list[StepItem]:
    """The verifiers' view of each step; the last is final (the episode is over)."""
    n = len(episode.steps)
    return [StepItem(episode.problem.prompt, episode.steps[:i + 1], is_final=i == n - 1)
            for i in range(n)]


class ProcessModelReward(StepReward):
    def __init__(self, models: RewardModels, aggregation: PathAggregation,
                 adapter: str = "prm") -> None:
        super().__init__("prm", aggregation)
        self.models, self.adapter = models, adapter

    def steps(self, batch: list[Episode]) -> list[list[float]]:
        return self.models.step_scores(self.adapter, [(e.problem.prompt, e.steps) for e in batch])


class VerifierReward(StepReward):
    """`syntax` or `logic`: the server's exact verifiers, which need no engine."""

    def steps(self, batch: list[Episode]) -> list[list[float]]:
        if self.__name__ == "syntax":
            return [[SyntaxVerifier.score_item(item) for item in _items(e)] for e in batch]
        return [[LogicVerifier.score_step(step) for step in e.steps] for e in batch]


class AdditiveProcessReward(StepReward):
    """Per step: the weighted sum of syntax, prm and logic (weights normalised to sum to 1)."""

    def __init__(self, weights: Mapping[str, float], aggregation: PathAggregation,
                 prm: ProcessModelReward | None) -> None:
        super().__init__("process", aggregation)
        self.weights = dict(weights)
        self.parts: dict[str, StepReward] = {
            name: prm if name == "prm" else VerifierReward(name, aggregation)
            for name in self.weights}

    def steps(self, batch: list[Episode]) -> list[list[float]]:
        scores = {name: part.steps(batch) for name, part in self.parts.items()}
        return [[combine({name: scores[name][k][i] for name in scores}, self.weights,
                         "weighted_sum") for i in range(len(e.steps))]
                for k, e in enumerate(batch)]


# What trains each learned reward's adapter (named when one is missing).
REWARD_MODEL_RECIPES = {
    "prm": "python -m training.prm --config training/configs/prm_demo.yaml",
    "orm": "python -m training.reward --config training/configs/orm_demo.yaml",
}


def reward_models_needed(weights: Mapping[str, float], process_weights: Mapping[str, float]
                         ) -> list[str]:
    """The learned reward adapters (prm, orm) a mix reads: `prm` and `orm` by name, and `prm`
    inside the `process` reward (a name given weight 0 is still scored, and logged)."""
    needs = set(weights)
    if "process" in needs and "prm" in process_weights:
        needs.add("prm")
    return sorted({"prm", "orm"} & needs)


def missing_reward_models(weights: Mapping[str, float], process_weights: Mapping[str, float],
                          adapters: Mapping[str, str | None]) -> list[str]:
    """A message per learned reward whose adapter directory is not there, naming the recipe
    that trains it."""
    problems = []
    for name in reward_models_needed(weights, process_weights):
        path = adapters.get(name)
        if not path or not (Path(path) / "adapter_config.json").is_file():
            problems.append(f"the {name} reward reads the {name.upper()} adapter, but --{name} "
                            f"{path or '(none)'} is not a PEFT adapter directory (no "
                            f"adapter_config.json): train it with `{REWARD_MODEL_RECIPES[name]}`"
                            f" or point --{name} at one")
    return problems


def build_rewards(weights: Mapping[str, float], process_weights: Mapping[str, float],
                  aggregation: PathAggregation, base: str, adapters: Mapping[str, str]
                  ) -> list[Reward]:
    """The reward functions of a mix, in the order of `weights`; the reward models they need
    are loaded once."""
    missing = missing_reward_models(weights, process_weights, adapters)
    if missing:
        raise ValueError("; ".join(missing))
    models = set(reward_models_needed(weights, process_weights))
    loaded = RewardModels(base, {m: adapters[m] for m in sorted(models)}) if models else None
    prm = ProcessModelReward(loaded, aggregation) if "prm" in models else None
    rewards: list[Reward] = []
    for name in weights:
        if name == "exact":
            rewards.append(ExactReward())
        elif name == "orm":
            rewards.append(OutcomeModelReward(loaded))
        elif name == "prm":
            rewards.append(prm)
        elif name == "process":
            rewards.append(AdditiveProcessReward(process_weights, aggregation, prm))
        else:
            rewards.append(VerifierReward(name, aggregation))
    return rewards


def mixed(rewards: Sequence[Reward], weights: Mapping[str, float], batch: list[Episode]
          ) -> tuple[list[float], dict[str, list[float]]]:
    """The weighted sum of the rewards per episode (what GRPO maximises), and each reward's."""
    each = {r.__name__: r.score(batch) for r in rewards}
    total = [sum(weights[name] * each[name][i] for name in each) for i in range(len(batch))]
    return total, each
