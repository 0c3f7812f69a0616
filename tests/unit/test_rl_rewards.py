"""The RL rewards (training/components/rl_rewards.py) on known completions: the exact checker,
the exact verifiers per step, the additive process reward, the weighted mix, the flags that name
them, and the learned reward models read from the committed demo adapters."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from training.components.rl_rewards import (
    AdditiveProcessReward, ExactReward, StepReward, VerifierReward, completion_steps, episodes,
    missing_reward_models, mixed, parse_weights, reward_models_needed)
from training.tasks import Problem

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "models" / "demo"

SUM = Problem("a-1", "arithmetic", "Compute: 22+36+26", "84", 2)
RIGHT = "22+36=58\n58+26=84\nAnswer: 84"
WRONG_STEP = "22+36=59\n59+26=85\nAnswer: 85"  # first claim false, the rest follow from it
NO_ANSWER = "22+36=58\n58+26=84"
COUNTDOWN = Problem("c-1", "countdown", "Numbers: 1 3 3 4 6 8 Target: 24", "24", 1)


def columns(*problems: Problem) -> dict[str, list]:
    """The dataset columns TRL hands a reward function, one row per completion."""
    return {"pid": [p.id for p in problems], "task": [p.task for p in problems],
            "question": [p.prompt for p in problems], "answer": [p.answer for p in problems],
            "difficulty": [p.difficulty for p in problems]}


def batch(*pairs: tuple[Problem, str]):
    problems, texts = zip(*pairs)
    return episodes(list(texts), columns(*problems))


# --- flags -----------------------------------------------------------------------------------

def test_weights_parse_names_and_mixes() -> None:
    assert parse_weights("prm", ["prm", "exact"], "--reward") == {"prm": 1.0}
    assert parse_weights("exact:0.5, prm:0.5", ["prm", "exact"], "--reward") == {
        "exact": 0.5, "prm": 0.5}
    assert parse_weights("syntax:0.3,prm:0.5,logic:0.2", ["syntax", "prm", "logic"], "x") == {
        "syntax": 0.3, "prm": 0.5, "logic": 0.2}


@pytest.mark.parametrize("spec, fix", [
    ("rouge", "unknown reward 'rouge'"),
    ("exact:much", "must be a number"),
    ("exact:-1", "weight >= 0"),
    ("exact,exact:2", "each reward once"),
    ("exact:0", "at least one reward with a positive weight"),
    ("", "at least one reward"),
])
def test_bad_weights_are_refused_with_the_fix(spec: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        parse_weights(spec, ["exact", "prm"], "--reward")


def test_learned_rewards_name_the_adapters_they_read(tmp_path: Path) -> None:
    process = {"syntax": 0.3, "prm": 0.5, "logic": 0.2}
    assert reward_models_needed({"exact": 1}, process) == []
    assert reward_models_needed({"exact": 1, "process": 1}, process) == ["prm"]
    assert reward_models_needed({"process": 1}, {"syntax": 1, "logic": 1}) == []
    assert reward_models_needed({"orm": 1, "prm": 1}, process) == ["orm", "prm"]
    present = {"prm": str(DEMO / "adapters" / "prm"), "orm": str(DEMO / "adapters" / "orm")}
    assert missing_reward_models({"orm": 1, "process": 1}, process, present) == []
    [message] = missing_reward_models({"orm": 1}, process, {"orm": str(tmp_path)})
    assert "training.reward --config training/configs/orm_demo.yaml" in message
    [message] = missing_reward_models({"process": 1}, process, {"prm": None})
    assert "training.prm --config training/configs/prm_demo.yaml" in message


# --- exact rewards ---------------------------------------------------------------------------

def test_steps_are_the_non_empty_lines_as_the_server_cuts_them() -> None:
    assert completion_steps("\n 22+36=58 \n\n58+26=84\nAnswer: 84\n") == [
        " 22+36=58", "58+26=84", "Answer: 84"]  # indentation kept, as /v1/verify keeps it
    assert completion_steps("  \n") == []


def test_exact_reward_is_the_tasks_checker_called_as_trl_calls_it() -> None:
    reward = ExactReward()
    # cut before its Answer line, a path states no answer: the exact reward pays it nothing
    texts = [RIGHT, WRONG_STEP, NO_ANSWER, "6*4=24\nAnswer: 24"]
    found = reward(prompts=["p"] * 4, completions=texts,
                   **columns(SUM, SUM, SUM, COUNTDOWN))
    assert found == [1.0, 0.0, 0.0, 1.0]
    assert reward.__name__ == "exact" and not reward.step_level


def test_syntax_and_logic_score_each_step_and_aggregate_along_the_path() -> None:
    episodes_ = batch((SUM, RIGHT), (SUM, WRONG_STEP), (SUM, NO_ANSWER), (SUM, ""))
    logic = VerifierReward("logic", "min")
    assert logic.steps(episodes_) == [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0], []]
    assert logic.score(episodes_) == [1.0, 0.0, 1.0, 0.0]  # no steps: 0, not an empty min
    assert VerifierReward("logic", "mean").score(episodes_)[1] == pytest.approx(2 / 3)
    syntax = VerifierReward("syntax", "min")
    # the last line of a finished completion must be its Answer line
    assert syntax.steps(episodes_)[2] == [1.0, 0.0]
    assert syntax.score(episodes_) == [1.0, 1.0, 0.0, 0.0]
    assert syntax.step_level and logic.step_level


class ScriptedSteps(StepReward):
    """A step-level part with given per-step scores (the PRM's place in the additive reward)."""

    def __init__(self, scores: list[list[float]]) -> None:
        super().__init__("prm", "min")
        self.scores = scores

    def steps(self, batch_):
        return self.scores


def test_additive_process_reward_is_the_weighted_sum_per_step() -> None:
    episodes_ = batch((SUM, RIGHT), (SUM, WRONG_STEP))
    prm = ScriptedSteps([[0.9, 0.8, 0.7], [0.2, 0.6, 1.0]])
    process = AdditiveProcessReward({"syntax": 0.3, "prm": 0.5, "logic": 0.2}, "min", prm)
    steps = process.steps(episodes_)
    # syntax is 1 on every step of both; logic is 0 on the wrong step only
    assert steps[0] == pytest.approx([0.3 + 0.5 * 0.9 + 0.2, 0.3 + 0.5 * 0.8 + 0.2,
                                      0.3 + 0.5 * 0.7 + 0.2])
    assert steps[1] == pytest.approx([0.3 + 0.5 * 0.2, 0.3 + 0.5 * 0.6 + 0.2, 0.3 + 0.5 + 0.2])
    assert process.score(episodes_) == pytest.approx([min(steps[0]), min(steps[1])])
    assert process.step_rewards(episodes_) == steps  # the per-step scores of the last call
    # weights need not sum to 1: the weighted sum is normalised by them
    doubled = AdditiveProcessReward({"syntax": 0.6, "prm": 1.0, "logic": 0.4}, "min", prm)
    assert [pytest.approx(s) for s in steps] == doubled.steps(episodes_)


def test_a_mix_is_the_weighted_sum_of_its_rewards() -> None:
    episodes_ = batch((SUM, RIGHT), (SUM, WRONG_STEP), (SUM, NO_ANSWER))
    rewards = [ExactReward(), VerifierReward("logic", "mean")]
    total, each = mixed(rewards, {"exact": 0.5, "logic": 2.0}, episodes_)
    assert each == {"exact": [1.0, 0.0, 0.0], "logic": [1.0, pytest.approx(2 / 3), 1.0]}
    assert total == pytest.approx([0.5 + 2.0, 2.0 * 2 / 3, 2.0])


# --- the learned reward models (the committed demo adapters) ---------------------------------

@pytest.fixture(scope="module")
def reward_models():
    from training.components.rl_rewards import RewardModels

    return RewardModels(str(DEMO / "base"), {"prm": str(DEMO / "adapters" / "prm"),
                                             "orm": str(DEMO / "adapters" / "orm")})


def test_prm_reads_every_step_from_one_forward_pass(reward_models) -> None:
    steps = ["22+36=58", "58+26=84", "Answer: 84"]
    together = reward_models.step_scores("prm", [(SUM.prompt, steps)])[0]
    apart = [reward_models.step_scores("prm", [(SUM.prompt, steps[:i + 1])])[0][-1]
             for i in range(len(steps))]
    assert together == pytest.approx(apart, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in together)


def test_learned_rewards_prefer_the_right_countdown_solution(reward_models) -> None:
    from training.components.rl_rewards import OutcomeModelReward, ProcessModelReward

    episodes_ = batch((COUNTDOWN, "6*4=24\nAnswer: 24"), (COUNTDOWN, "6*3=24\nAnswer: 24"),
                      (COUNTDOWN, ""))
    prm = ProcessModelReward(reward_models, "min")
    per_step = prm.steps(episodes_)
    assert per_step[0][0] > 0.5 > per_step[1][0]  # the false step is the one marked down
    assert per_step[2] == []
    scores = prm.score(episodes_)
    assert scores[0] > scores[1] and scores[2] == 0.0
    orm = OutcomeModelReward(reward_models)(
        prompts=["p"] * 2, completions=["6*4=24\nAnswer: 24", "6*3=18\nAnswer: 18"],
        **columns(COUNTDOWN, COUNTDOWN))
    assert orm[0] > orm[1] and all(0.0 <= s <= 1.0 for s in orm)


def test_a_step_past_the_judges_context_scores_zero(reward_models) -> None:
    reward_models.max_length, kept = 40, reward_models.max_length
    try:
        steps = [f"{i}+1={i + 1}" for i in range(30)]
        scores = reward_models.step_scores("prm", [(SUM.prompt, steps)])[0]
        assert len(scores) == 30 and scores[-1] == 0.0 and scores[0] > 0.0
        assert reward_models.outcome_scores("orm", [(SUM.prompt, steps)]) == [0.0]
    finally:
        reward_models.max_length = kept
    assert math.isfinite(scores[0])
