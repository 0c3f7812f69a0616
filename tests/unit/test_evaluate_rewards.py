"""Reward-model evaluation: reading tag scores from prompt logprobs, picking, summarising."""

import math
from types import SimpleNamespace

import pytest

from training.components.reward_eval import (Sample, majority_pick, prm_path, summarise,
                                              tag_scores, weighted_pick)
from training.components.tokenizer import build_tokenizer
from training.tasks import Problem
from verifiers.label_reading import find_tags, prompt_encoder
from verifiers.reward_format import written_path

PROBLEM = Problem("p", "arithmetic", "Compute: 2+3", "5", 1)


def sample(text, correct, prm=(), orm=0.5, labels=(), solvable=None):
    return Sample(PROBLEM, text, text.split("\n"), correct, list(labels),
                  list(labels if solvable is None else solvable), list(prm), orm)


def test_tag_scores_reads_the_distribution_after_each_tag():
    tokenizer = build_tokenizer()
    reading = find_tags(written_path("Compute: 2+3", ["2+3=5", "Answer: 5"]),
                        prompt_encoder(tokenizer))
    lp = lambda token, p: SimpleNamespace(decoded_token=token, logprob=math.log(p))  # noqa: E731
    positions = [None] + [{1: lp("\n", 0.5)} for _ in reading.ids[1:]]
    tags = reading.positions  # the demo's characters: the "#" of each tag
    assert [tokenizer.convert_ids_to_tokens(reading.ids[p]) for p in tags] == ["#", "#"]
    positions[tags[0] + 1] = {1: lp("+", 0.8), 2: lp("-", 0.2)}
    positions[tags[1] + 1] = {1: lp("+", 0.1), 2: lp("-", 0.3)}
    assert tag_scores(positions, reading) == [pytest.approx(0.8), pytest.approx(0.25)]
    assert tag_scores(positions[: tags[1] + 1], reading) == [pytest.approx(0.8), None]


def test_majority_pick_and_summary():
    group = [sample("Answer: 5", True, prm=[0.9], orm=0.2, labels=[1]),
             sample("Answer: 6", False, prm=[0.3], orm=0.9, labels=[0]),
             sample("Answer: 6", False, prm=[0.4], orm=0.1, labels=[0])]
    # a valid dead end: good to the step checker, bad to the solvable labels
    dead_end = sample("Answer: 7", False, prm=[0.95], orm=0.0, labels=[1], solvable=[0])
    assert majority_pick(group).text == "Answer: 6"
    result = summarise({"p": group})
    assert result["best_of_n_prm"] == 1.0 and result["best_of_n_orm"] == 0.0
    assert result["best_of_n_majority"] == 0.0 and result["oracle"] == 1.0
    assert result["prm_step_auroc"] == 1.0 and result["orm_pairwise_accuracy"] == 0.5
    assert result["sample_accuracy"] == pytest.approx(1 / 3)
    assert result["prm_solvable_auroc"] == 1.0
    result = summarise({"p": group + [dead_end]})
    assert result["prm_step_auroc"] == 1.0 and result["prm_solvable_auroc"] == pytest.approx(2 / 3)


def test_the_picks_are_the_servers_votes():
    # answers read as the server reads them (the last Answer line; "5." is 5)
    group = [sample("Answer: 6", False), sample("Answer: 7\nAnswer: 5", True),
             sample("Answer: 5.", True)]
    assert majority_pick(group) is group[1]
    # a tie of summed weights goes to the answer with the better solution, which represents it
    group = [sample("Answer: 6", False, prm=[0.25]), sample("Answer: 5", True, prm=[0.5]),
             sample("Answer: 6", False, prm=[0.25])]
    assert weighted_pick(group, prm_path) is group[1]
