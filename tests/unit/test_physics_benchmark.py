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


def test_the_report_judges_the_targets_from_the_outcomes(tmp_path):
    rows = []
    for model in ("demo", "physics"):
        for config, _ in bench.CONFIGS:
            for level in task.LEVELS:
                for i in range(2):
                    ruled = config != "greedy" and "prm" != config.split()[-1]
                    rows.append(bench.Outcome(
                        config, model, f"{level}-{i}", level,
                        correct=model == "physics" and (ruled or i == 0),
                        answered=True, answer_dimension_error=not ruled and i == 1,
                        step_dimension_error=False, completion_tokens=10,
                        symbolic_in_answer=int("symbolic" in config), latency_s=1.0, text=""))
    results = bench.table(rows)
    assert results["physics"]["greedy"]["4"]["accuracy"] == 0.5
    assert results["physics"]["beam/3 prm x units x physics"]["all"]["accuracy"] == 1.0
    lines = bench.targets(results)
    assert "physics: level 4, best search with the rules" in lines[3] and "+50.0" in lines[3]
    assert lines[3].endswith("**met**") and lines[2].endswith("**met**")
    # the base is a reference: its figures, no verdict
    assert lines[1].startswith("- demo (the base, a reference: not judged): level 4")
    assert lines[1].endswith("+0.0 points") and "**" not in lines[0] + lines[1]
    args = type("Args", (), {"per_level": 2, "concurrency": 1})()
    text = bench.report(results, args, 8, 60.0, bench.figure(results, tmp_path / "p.png"))
    assert "| greedy | 50% | 50% | 50% | 50% | 50.0% | 50.0% |" in text
    assert (tmp_path / "p.png").stat().st_size > 0
