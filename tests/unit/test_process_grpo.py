"""Per-step credit for GRPO (training/components/process_grpo.py) on tiny shapes: which step each
token belongs to, and the advantage each token gets from its step's and the later steps'
rewards, normalised over the group."""

from __future__ import annotations

import pytest
import torch

from training.components.process_grpo import EPSILON, process_advantages, token_steps


def test_each_token_belongs_to_the_line_it_starts_on() -> None:
    pieces = ["22", "+36=58", "\n", "58+26", "=84\n", "Answer", ": 84"]
    assert token_steps(pieces) == [0, 0, 0, 1, 1, 2, 2]


def test_blank_lines_go_with_the_next_step_and_the_tail_with_the_last() -> None:
    # "\n\n" before the first step: step 0; the blank line between steps: the next one;
    # a trailing newline token after the last step: the last step
    pieces = ["\n", "\n", "1+1=2", "\n", "\n", "Answer: 2", "\n", ""]
    assert token_steps(pieces) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert token_steps(["", ""]) == [0, 0]  # no step at all: everything is "step 0"


def test_advantages_are_the_reward_to_go_normalised_over_the_group() -> None:
    rewards = [[1.0, 0.0], [1.0, 1.0]]  # one group of two completions, two steps each
    steps_of_tokens = [[0, 0, 1], [0, 1, 1]]
    found = process_advantages(rewards, steps_of_tokens, group=2, width=4)
    pooled = torch.tensor([1.0, 0.0, 1.0, 1.0])
    mean, std = pooled.mean(), pooled.std(unbiased=False)
    z = lambda r: ((r - mean) / (std + EPSILON)).item()  # noqa: E731
    first = [z(1.0) + z(0.0), z(0.0)]  # to go from step 0 and from step 1
    second = [z(1.0) + z(1.0), z(1.0)]
    assert found.shape == (2, 4)
    assert found[0].tolist() == pytest.approx([first[0], first[0], first[1], 0.0], abs=1e-5)
    assert found[1].tolist() == pytest.approx([second[0], second[1], second[1], 0.0], abs=1e-5)
    # the wrong step is penalised, and so is everything before it; the right path is credited
    assert found[0, 2] < 0 and found[0, 0] < found[1, 0] and found[1, 2] > 0


def test_groups_are_normalised_apart_and_equal_rewards_give_no_advantage() -> None:
    rewards = [[0.5], [0.5], [0.0, 1.0], [1.0, 0.0]]
    steps_of_tokens = [[0, 0], [0, 0], [0, 1], [0, 1]]
    found = process_advantages(rewards, steps_of_tokens, group=2, width=2)
    assert found[:2].abs().max().item() == 0.0  # a group whose steps all score alike
    # second group: pooled [0, 1, 1, 0], mean .5, std .5 -> z = -1, +1
    assert found[2].tolist() == pytest.approx([0.0, 1.0], abs=1e-3)
    assert found[3].tolist() == pytest.approx([0.0, -1.0], abs=1e-3)


def test_a_completion_without_steps_counts_as_one_step_of_reward_zero() -> None:
    found = process_advantages([[], [1.0]], [[0, 0], [0, 0]], group=2, width=3)
    assert found[0, 0] < 0 < found[1, 0]
    assert found[0, :2].tolist() == pytest.approx([found[0, 0].item()] * 2)
    assert found[:, 2].tolist() == [0.0, 0.0]  # past the tokens: nothing


def test_tokens_past_the_last_scored_step_take_the_last_steps_credit() -> None:
    # a step beyond the rewards (e.g. the PRM gave fewer scores) is clamped to the last one
    found = process_advantages([[0.0], [1.0]], [[0, 3], [0, 0]], group=2, width=2)
    assert found[0, 1] == found[0, 0]
