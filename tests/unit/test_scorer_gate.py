"""The scorer's gate: verifiers run in tiers by `cost`, cheapest first, and a costlier tier
judges only the items the cheaper ones leave at the gate or above."""

import pytest

from search.strategies.mcts import acceptance
from search.tree import Tree
from verifiers.builtin.orm import ORMVerifier
from verifiers.builtin.prm import PRMVerifier
from verifiers.protocol import StepItem
from verifiers.scorer import VERIFIER_SKIPPED, Scorer

ITEMS = [StepItem("q", (step,), is_final=True) for step in ("good", "poor", "bad")]
TABLE = {"good": 0.9, "poor": 0.01, "bad": 1e-5}


class Recording:
    """Scores each item by its step's name (or a fixed value); records what it was asked."""

    def __init__(self, name, cost=None, table=None, value=0.5, fail=False):
        self.name, self.table, self.value, self.fail, self.seen = name, table, value, fail, []
        if cost is not None:
            self.cost = cost

    async def score(self, items, context):
        self.seen.append([item.step for item in items])
        if self.fail:
            raise RuntimeError(f"{self.name} down")
        return [self.table[item.step] if self.table else self.value for item in items]


def two_tiers(judge, gate, weights=None):
    return Scorer({"cheap": Recording("cheap", table=TABLE), "judge": judge}, weights or {},
                  gate=gate)


async def test_a_costlier_verifier_judges_only_items_at_or_above_the_gate():
    judge = Recording("judge", cost=2)
    before = VERIFIER_SKIPPED.labels(verifier="judge")._value.get()
    result = await two_tiers(judge, gate=0.01).score(ITEMS)
    assert VERIFIER_SKIPPED.labels(verifier="judge")._value.get() == before + 1
    assert judge.seen == [["good", "poor"]]
    assert result.per_verifier["judge"] == [0.5, 0.5, 1.0]  # 1.0: no opinion on "bad"
    assert result.skipped == {"judge": {2}}
    assert result.combined == pytest.approx([0.45, 0.005, 1e-5])


async def test_without_a_gate_every_verifier_judges_every_item():
    judge = Recording("judge", cost=2)
    result = await two_tiers(judge, gate=None).score(ITEMS)
    assert judge.seen == [["good", "poor", "bad"]] and result.skipped == {}
    assert result.combined == pytest.approx([0.45, 0.005, 5e-6])


async def test_the_gate_uses_the_weighted_product_of_the_tiers_before():
    judge = Recording("judge", cost=1)
    await two_tiers(judge, gate=0.01, weights={"cheap": 0.5}).score(ITEMS)  # 1e-5 ** 0.5 < 0.01
    assert judge.seen == [["good", "poor"]]
    await two_tiers(judge, gate=0.5, weights={"cheap": 0.5}).score(ITEMS)
    assert judge.seen[-1] == ["good"]


async def test_three_tiers_each_gated_by_all_before_it():
    middle = Recording("middle", cost=1, table={"good": 0.9, "poor": 0.5})
    last = Recording("last", cost=2)
    scorer = Scorer({"last": last, "middle": middle, "cheap": Recording("cheap", table=TABLE)},
                    {}, gate=0.01)
    result = await scorer.score(ITEMS)
    # "poor": 0.01 passes the first gate, 0.01 * 0.5 not the second
    assert middle.seen == [["good", "poor"]] and last.seen == [["good"]]
    assert result.skipped == {"middle": {2}, "last": {1, 2}}
    assert result.combined == pytest.approx([0.9 * 0.9 * 0.5, 0.005, 1e-5])


async def test_nothing_above_the_gate_means_the_costlier_tier_is_not_called():
    judge = Recording("judge", cost=2)
    result = await two_tiers(judge, gate=0.95).score(ITEMS)
    assert judge.seen == [] and result.per_verifier["judge"] == [1.0, 1.0, 1.0]
    assert result.combined == pytest.approx([0.9, 0.01, 1e-5])


async def test_the_cheapest_tier_present_judges_everything():
    judge = Recording("judge", cost=2, value=0.25)
    result = await Scorer({"judge": judge}, {}, gate=0.5).score(ITEMS)
    assert judge.seen == [["good", "poor", "bad"]] and result.combined == [0.25] * 3


async def test_a_failing_costlier_verifier_is_left_out_and_named():
    judge = Recording("judge", cost=2, fail=True)
    scorer = two_tiers(judge, gate=0.01)
    result = await scorer.score(ITEMS)
    assert set(result.per_verifier) == {"cheap"} and "judge down" in result.errors["judge"]
    assert result.combined == pytest.approx([0.9, 0.01, 1e-5])
    await scorer.score(ITEMS)  # not asked again within the request
    assert len(judge.seen) == 1


async def test_a_cost_that_is_not_a_number_counts_as_zero():
    odd = Recording("odd", cost="high", value=0.5)
    judge = Recording("judge", cost=1)
    scorer = Scorer({"odd": odd, "judge": judge, "cheap": Recording("cheap", table=TABLE)}, {},
                    gate=0.01)
    result = await scorer.score(ITEMS)
    assert odd.seen == [["good", "poor", "bad"]] and judge.seen == [["good"]]
    assert result.skipped == {"judge": {1, 2}}


def test_the_reward_models_run_after_the_checks_and_the_orm_last():
    assert (PRMVerifier.cost, ORMVerifier.cost) == (1, 2)


def test_greedy_acceptance_does_not_count_a_skipped_step_as_approved():
    """A step the cheap checks zeroed has no prm score (the gate kept it from the prm); the
    acceptance of a path through it falls back to the step's combined score, 0."""
    tree = Tree()
    first = tree.add(tree.root, "3*4=13", score=0.0, verifier_scores={"logic": 0.0})
    end = tree.add(first, "Answer: 13", score=0.9, verifier_scores={"logic": 1.0, "prm": 0.9})
    assert acceptance(end, "prm") == 0.0


async def test_with_a_weighted_sum_the_gate_counts_unasked_verifiers_as_full_marks():
    # cheap 1e-5 with judge's weight 3 of 4 could still reach (3 + 1e-5) / 4 > 0.5: asked;
    # with the gate at 0.9 only "good" ((1 * 0.9 + 3) / 4 = 0.975) can reach it
    judge = Recording("judge", cost=1, value=0.2)
    scorer = Scorer({"cheap": Recording("cheap", table=TABLE), "judge": judge},
                    {"cheap": 1.0, "judge": 3.0}, gate=0.5, combine="weighted_sum")
    result = await scorer.score(ITEMS)
    assert judge.seen == [["good", "poor", "bad"]]
    assert result.combined == pytest.approx([(0.9 + 0.6) / 4, (0.01 + 0.6) / 4, (1e-5 + 0.6) / 4])
    scorer = Scorer({"cheap": Recording("cheap", table=TABLE), "judge": judge},
                    {"cheap": 1.0, "judge": 3.0}, gate=0.9, combine="weighted_sum")
    result = await scorer.score(ITEMS)
    assert judge.seen[-1] == ["good"]
    # the items left out score their bound, which is below the gate
    assert result.combined == pytest.approx([(0.9 + 0.6) / 4, (0.01 + 3) / 4, (1e-5 + 3) / 4])
    assert all(score < 0.9 for score in result.combined[1:])
