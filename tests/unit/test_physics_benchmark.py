"""benchmarks.physics' measures on hand-written answers: what counts as a dimensional error,
and fresh problems leave the adapter's training prompts out."""

from benchmarks import physics as bench
from training.tasks import physics as task
from training.tasks.base import Problem

PROBLEM = Problem("p", "physics", "Physics: m=2 kg, a=3 m/s^2. Find F in N.", "6 N", 1)


def test_an_answer_in_another_dimension_or_without_a_unit_is_a_dimensional_error():
    assert bench.answer_dimension_error(PROBLEM, "F=m*a=2*3=6 N\nAnswer: 6 N") == (True, False)
    assert bench.answer_dimension_error(PROBLEM, "Answer: 0.006 kN") == (True, False)
    assert bench.answer_dimension_error(PROBLEM, "Answer: 6 J") == (True, True)
    assert bench.answer_dimension_error(PROBLEM, "Answer: 6") == (True, True)
    assert bench.answer_dimension_error(PROBLEM, "F=m*a=2*3=6 N") == (False, False)


def test_a_step_in_a_wrong_dimension_is_counted_even_under_a_right_answer():
    assert bench.step_dimension_error(PROBLEM, "F=m+a=2+3=6 N\nAnswer: 6 N")
    assert not bench.step_dimension_error(PROBLEM, "F=m*a=2*3=6 N\nAnswer: 6 N")


def test_fresh_problems_leave_out_the_trained_prompts():
    every = bench.fresh_problems(5, set())
    trained = {p.prompt for p in every[:3]}
    fresh = bench.fresh_problems(5, trained)
    assert len(fresh) == 5 * len(task.LEVELS)
    assert not trained & {p.prompt for p in fresh}
    assert [p.difficulty for p in fresh] == [lv for lv in task.LEVELS for _ in range(5)]
