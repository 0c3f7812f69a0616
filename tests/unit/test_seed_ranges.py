"""One table says which seeds each recipe draws its problems from; no two streams overlap, and a
recipe's seed cannot walk into another's stream."""

from __future__ import annotations

import itertools

import pytest

from training.components.problems import draw_problems, worked_problems
from training.components.seeds import SEED_RANGES, is_evaluation_seed, problem_seed


def test_no_two_streams_overlap():
    for (a, ra), (b, rb) in itertools.combinations(SEED_RANGES.items(), 2):
        assert ra.start < ra.stop and rb.start < rb.stop
        assert ra.stop <= rb.start or rb.stop <= ra.start, f"{a} and {b} overlap"


def test_the_committed_artifacts_streams_are_where_they_were_trained():
    # models/demo: pretraining from 1_000_000, adapter data 2_000_000, rollouts 3_000_000,
    # the difficulty adapter's labels 4_000_000 (train) and 4_000_001 (held out)
    assert problem_seed("pretrain", 0) == 1_000_000
    assert problem_seed("sft", 0) == 2_000_000
    assert problem_seed("rollouts", 2) == 3_000_002
    assert problem_seed("difficulty", 1) == 4_000_001
    assert problem_seed("corrupt_steps", 0) == 5_000_000  # moved off difficulty's stream


def test_a_seed_that_leaves_its_stream_is_refused():
    with pytest.raises(ValueError, match="leaves the rollouts stream"):
        problem_seed("rollouts", 1_000_000)
    with pytest.raises(ValueError, match="0..999999"):
        problem_seed("difficulty", -1)


def test_evaluation_seeds_are_below_every_training_stream():
    assert is_evaluation_seed(7) and is_evaluation_seed(900_000)
    assert not is_evaluation_seed(1_000_000) and not is_evaluation_seed(-1)
    training = [r for name, r in SEED_RANGES.items() if name != "evaluation"]
    assert min(r.start for r in training) == SEED_RANGES["evaluation"].stop


def test_difficulty_and_corrupt_steps_no_longer_draw_the_same_problems():
    # the two shared 4_000_000 until issue 22: at seed 0 both drew these very problems
    difficulty = {p.prompt for p in draw_problems(["countdown"], "difficulty", seed=0, count=50)}
    before = {p.prompt for p, _ in worked_problems("countdown", 4_000_000, 50)}
    assert before == difficulty
    now = {p.prompt for p, _ in worked_problems("countdown", problem_seed("corrupt_steps", 0), 50)}
    assert now.isdisjoint(difficulty)
