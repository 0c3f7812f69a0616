"""Per-step credit for GRPO from process rewards (`training.rl --credit step`).

TRL's GRPOTrainer takes one reward per completion; its loss accepts a (B, T) advantage from a
subclass. This one follows DeepSeekMath's process supervision (Shao et al. 2024, section
4.1.3): every step's reward is normalised over all the steps of the prompt's group of
completions, and a token's advantage is the sum of the normalised rewards of its own step and of
the steps after it, so a token is credited for what follows it, not for the whole solution.
The outcome rewards of a mix (exact, orm) keep TRL's sequence advantage, which is added to every
token; the step-level rewards enter TRL with weight 0 and come back here per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from training.components.rl_rewards import StepReward, episodes

EPSILON = 1e-4  # TRL's guard against a zero standard deviation


def token_steps(pieces: Sequence[str]) -> list[int]:
    """The step index of each token, from the tokens' texts. Steps are the non-empty lines
    (`label_reading.completion_steps`); a token on a blank line, or after the last step (the end
    of sequence), belongs to the next step, or to the last one."""
    text = "".join(pieces)
    lines = text.split("\n")
    step_of_line, step = [], -1
    for line in lines:
        step += bool(line.strip())
        step_of_line.append(step)
    last = max(step, 0)
    # a blank line before the first step belongs to step 0; blank lines go with the next step
    nxt = last
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].strip():
            nxt = step_of_line[i]
        else:
            step_of_line[i] = nxt
    found, start = [], 0
    for piece in pieces:
        found.append(min(step_of_line[text.count("\n", 0, start)], last))
        start += len(piece)
    return found


def process_advantages(step_rewards: Sequence[Sequence[float]],
                       steps_of_tokens: Sequence[Sequence[int]], group: int, width: int
                       ) -> torch.Tensor:
    """[B, width] advantages: per group of `group` completions, the steps' rewards normalised
    over all the group's steps, each token given the sum over its step and the later ones.
    A completion without steps counts as one step of reward 0."""
    rewards = [list(r) or [0.0] for r in step_rewards]
    advantages = torch.zeros(len(rewards), width)
    for first in range(0, len(rewards), group):
        members = range(first, min(first + group, len(rewards)))
        pooled = torch.tensor([r for i in members for r in rewards[i]])
        mean = pooled.mean()
        std = pooled.std(unbiased=False) if len(pooled) > 1 else torch.tensor(0.0)
        for i in members:
            normalised = (torch.tensor(rewards[i]) - mean) / (std + EPSILON)
            to_go = normalised.flip(0).cumsum(0).flip(0)  # [steps]: sum over j >= k
            steps = torch.tensor(steps_of_tokens[i][:width], dtype=torch.long)
            advantages[i, :len(steps)] = to_go[steps.clamp(max=len(to_go) - 1)]
    return advantages


def process_trainer_class():
    """GRPOTrainer with per-step credit (a function, so that importing this module does not
    import TRL)."""
    from trl import GRPOTrainer

    class ProcessGRPOTrainer(GRPOTrainer):
        """`step_rewards`: (reward, weight) of the step-level rewards of the mix, which the
        caller passes to TRL with weight 0."""

        def __init__(self, *args, step_rewards: Sequence[tuple[StepReward, float]], **kwargs):
            super().__init__(*args, **kwargs)
            self.step_rewards = list(step_rewards)

        # private in TRL (its _prepare_inputs calls it, its loss takes a [B, T] advantage), so
        # pyproject bounds TRL's version; test_process_grpo checks the loss sees this credit
        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            ids, mask = output["completion_ids"], output["completion_mask"]
            texts, pieces = [], []
            for row, keep in zip(ids.tolist(), mask.tolist()):
                tokens = [t for t, m in zip(row, keep) if m]
                parts = [self.processing_class.decode([t], skip_special_tokens=True)
                         for t in tokens]
                pieces.append(parts)
                texts.append("".join(parts))
            columns = {key: [x[key] for x in inputs] for key in inputs[0] if key != "prompt"}
            batch = episodes(texts, columns)
            per_step = [[0.0] * len(e.steps) for e in batch]
            for reward, weight in self.step_rewards:
                for k, scores in enumerate(reward.step_rewards(batch)):
                    per_step[k] = [a + weight * b for a, b in zip(per_step[k], scores)]
            group = self.num_generations if self.model.training else self.num_generations_eval
            step_adv = process_advantages(per_step, [token_steps(p) for p in pieces], group,
                                          ids.shape[1]).to(ids.device)
            output["advantages"] = output["advantages"].unsqueeze(1) + step_adv * mask
            return output

    return ProcessGRPOTrainer
