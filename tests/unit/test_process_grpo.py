"""Per-step credit for GRPO (training/components/process_grpo.py) on tiny shapes: which step each
token belongs to, and the advantage each token gets from its step's and the later steps'
rewards, normalised over the group; and (slow) that TRL's loss trains on that credit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.components.process_grpo import EPSILON, process_advantages, token_steps
from training.components.rl_rewards import StepReward

DEMO_MODEL = Path(__file__).resolve().parents[2] / "models" / "demo" / "base"


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


class AlternatingStepReward(StepReward):
    """Every step of the k-th completion scores k % 2: in each group of two, one completion's
    steps all score 1 and the other's 0, whatever the (random) texts."""

    def __init__(self) -> None:
        super().__init__("alternating", "min")

    def steps(self, batch):
        return [[float(k % 2)] * len(e.steps) for k, e in enumerate(batch)]

    def step_rewards(self, batch):  # by position: no cache, where equal texts share an entry
        return self.steps(batch)


@pytest.mark.slow  # imports TRL (~10 s of CPU) and trains a step
def test_trl_trains_on_the_per_step_advantages_of_the_override(tmp_path) -> None:
    # The override replaces a private TRL method (pyproject bounds TRL's version): one real GRPO
    # step on the demo base, the step reward given to TRL with weight 0 as training.rl does, so
    # TRL's own advantage is 0 everywhere and one [B] per completion; the loss must see the
    # override's [B, T] per-token credit instead.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training import rl
    from training.components.process_grpo import process_trainer_class

    args = rl.build_parser().parse_args([
        "--model", str(DEMO_MODEL), "--dataset", "task:arithmetic/2-3:4", "--out", str(tmp_path),
        "--max-steps", "1", "--batch-size", "4", "--num-generations", "2",
        "--max-completion-length", "12", "--logging-steps", "1"])
    seen = []

    class Spy(process_trainer_class()):
        def compute_loss(self, model, inputs, *rest, **kwargs):
            seen.append((inputs["advantages"].detach().clone(), inputs["completion_mask"]))
            return super().compute_loss(model, inputs, *rest, **kwargs)

    reward = AlternatingStepReward()
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    trainer = Spy(model=model, reward_funcs=[reward], args=rl.grpo_config(args, [0.0]),
                  train_dataset=rl.weighted_dataset(rl.prompt_rows(args.dataset, "rl", 0), 0),
                  processing_class=AutoTokenizer.from_pretrained(args.model),
                  peft_config=rl.lora_config(model, args), step_rewards=[(reward, 1.0)])
    trainer.train()
    assert seen, "TRL never computed a loss"
    for advantages, mask in seen:
        assert advantages.shape == mask.shape  # [B, T]: the override's, not TRL's [B]
        assert (advantages * (1 - mask)).abs().max().item() == 0.0
        assert (advantages * mask).abs().max().item() > 0  # the step reward's credit
