"""Which seeds each recipe draws its demo problems from: one table, no two streams overlapping.

A demo task's problems are a pure function of (seed, level), so two recipes that draw from the
same seed would train (or evaluate) on the same problems. Every recipe asks this table for its
seed (`problem_seed(stream, seed)`), and `tests/unit/test_seed_ranges.py` fails on an overlap.

Moved in issue 22: `training.corrupt_steps` drew from 4_000_000 + seed, as `training.difficulty`
still does. The committed difficulty adapter was measured on 4_000_000 / 4_000_001 and stays
reproducible; corrupt_steps now draws from 5_000_000 + seed (the committed PRM and ORM were
trained on an earlier draw of its rows, from 4_000_000; models/demo/README.md says so).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedRange:
    start: int
    stop: int  # exclusive
    users: str


SEED_RANGES: dict[str, SeedRange] = {
    "evaluation": SeedRange(0, 1_000_000,
                            "training.evaluate, training.evaluate_rewards, --eval-seed of the "
                            "adapter recipes, benchmarks (reasoning 900_000+, calibrate_router "
                            "800_000+, auto_target 700_000+, rl 600_000+, swarm 560_000+, "
                            "lm-eval tasks 550_000+, peers 500_000+), tests on committed "
                            "models"),
    "pretrain": SeedRange(1_000_000, 2_000_000,
                          "training.pretrain (chunk k of run seed s: start + s * 10_000 + k)"),
    "sft": SeedRange(2_000_000, 3_000_000,
                     "task:SELECTOR:COUNT datasets of training.lora, training.finetune and "
                     "training.prompt_tuning"),
    "rollouts": SeedRange(3_000_000, 4_000_000, "training.rollouts"),
    "difficulty": SeedRange(4_000_000, 5_000_000,
                            "training.difficulty (--seed for training, --eval-seed held out)"),
    "corrupt_steps": SeedRange(5_000_000, 6_000_000, "training.corrupt_steps"),
    "rl": SeedRange(6_000_000, 6_500_000, "training.rl's training prompts"),
    "rl_guard": SeedRange(6_500_000, 7_000_000,
                          "training.rl's held-out prompts of the reward-hacking guard (it picks "
                          "the checkpoint by them, so they are not a test set)"),
    "swarm_router": SeedRange(7_000_000, 7_500_000,
                              "training.swarm_router (--seed for training, --seed + 1 held out)"),
    "tests": SeedRange(9_000_000, 10_000_000, "tests that train on generated data"),
}


def problem_seed(stream: str, seed: int) -> int:
    """The task seed of a recipe's run seed: its stream's start + seed; a seed that would leave
    the stream (and so draw another recipe's problems) is refused."""
    bounds = SEED_RANGES[stream]
    value = bounds.start + seed
    if not bounds.start <= value < bounds.stop:
        raise ValueError(f"seed {seed} leaves the {stream} stream "
                         f"[{bounds.start:_}, {bounds.stop:_}): use 0..{bounds.stop - bounds.start - 1}")
    return value


def is_evaluation_seed(seed: int) -> bool:
    """True for a seed no training stream draws from (what evaluation recipes must use)."""
    bounds = SEED_RANGES["evaluation"]
    return bounds.start <= seed < bounds.stop
