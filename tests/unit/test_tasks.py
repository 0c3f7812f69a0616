"""The demo tasks: worked solutions, seeded generation, exact and per-step checkers, JSONL."""

from __future__ import annotations

import hashlib
import json

import pytest

from training.tasks import (TASKS, Problem, arithmetic, countdown, from_prompt, get_task,
                            solvable_labels, step_labels)
from training.tasks.__main__ import main as export_main
from training.tasks.base import completion_prompt, states_answer

EXAMPLE = "Compute: 48+17*3-29*2+11"
EXAMPLE_SOLUTION = "17*3=51\n29*2=58\n48+51=99\n99-58=41\n41+11=52\nAnswer: 52"


def arith(expr: str) -> Problem:
    problem = arithmetic.from_prompt(f"Compute: {expr}")
    assert problem is not None
    return problem


def cd(prompt: str) -> Problem:
    problem = countdown.from_prompt(prompt)
    assert problem is not None
    return problem


# --- arithmetic -----------------------------------------------------------------------------

@pytest.mark.parametrize("expr, value", [
    ("48+17*3-29*2+11", 52), ("2+3*4", 14), ("10-2-3", 5), ("10-2+3", 11),
    ("2*3*4", 24), ("7", 7), ("99*99-1", 9800),
])
def test_arithmetic_precedence(expr, value):
    assert arithmetic.evaluate(f"Compute: {expr}") == value
    assert arith(expr).answer == str(value)


def test_arithmetic_worked_solution_matches_the_format():
    assert arithmetic.solution(arith(EXAMPLE[9:])) == EXAMPLE_SOLUTION
    assert arithmetic.solution(arith("2*3*4+1")) == "2*3=6\n6*4=24\n24+1=25\nAnswer: 25"


@pytest.mark.parametrize("completion, correct", [
    (EXAMPLE_SOLUTION, True),
    (EXAMPLE_SOLUTION.replace("Answer: 52", "Answer: 53"), False),
    # the answer line as the server reads it (search.answers' `answer` extractor), not the
    # first `Answer: N` line as an int
    (EXAMPLE_SOLUTION + "\nAnswer: 53", False),  # the last Answer line counts
    ("Answer: 53\n" + EXAMPLE_SOLUTION, True),
    (EXAMPLE_SOLUTION + ".", True),  # "Answer: 52."
    (EXAMPLE_SOLUTION.replace("Answer: 52", "answer: 52"), True),
    (EXAMPLE_SOLUTION.replace("Answer: 52", "Answer: 052"), False),  # compared as text
    (EXAMPLE_SOLUTION.rsplit("\n", 1)[0], False),  # cut before its Answer line: none stated
    ("17*3=51\n29*2=58", False),  # cut earlier: an intermediate value
])
def test_arithmetic_check_reads_the_answer_line_as_the_server_does(completion, correct):
    assert arithmetic.check(arith(EXAMPLE[9:]), completion) is correct


def test_arithmetic_step_checker_follows_precedence_and_arithmetic():
    problem = arith(EXAMPLE[9:])
    steps = EXAMPLE_SOLUTION.split("\n")
    assert all(arithmetic.check_step(problem, steps[:i], s) for i, s in enumerate(steps))
    assert arithmetic.check_step(problem, [], "29*2=58")  # another valid order
    assert not arithmetic.check_step(problem, [], "48+17=65")  # ignores precedence
    assert not arithmetic.check_step(problem, [], "17*3=52")  # wrong arithmetic
    assert not arithmetic.check_step(problem, [], "18*3=54")  # not in the expression
    assert not arithmetic.check_step(problem, steps[:2], "Answer: 52")  # not reduced yet
    assert not arithmetic.check_step(problem, ["17*3=52"], "29*2=58")  # after an invalid step
    assert not arithmetic.check_step(problem, steps, "1+1=2")  # nothing after the Answer
    assert not arithmetic.check_step(arith("10-2+3"), [], "2+3=5")  # 10-(2+3) is not 10-2+3
    assert not arithmetic.check_step(arith("10-2-3"), [], "2-3=-1")
    assert arithmetic.check_step(arith("1+10-2"), [], "10-2=8")  # 1+(10-2) is fine
    assert arithmetic.check_steps(problem, EXAMPLE_SOLUTION)


@pytest.mark.parametrize("level", list(arithmetic.LEVELS))
def test_arithmetic_generation_respects_the_level(level):
    for problem in arithmetic.generate(seed=3, count=20, difficulty=level):
        nums, ops = arithmetic.parse(problem.prompt)
        assert len(ops) == level == problem.difficulty
        assert max(nums) <= arithmetic.max_operand(level) <= 99
        solution = arithmetic.solution(problem)
        assert arithmetic.check(problem, solution) and arithmetic.check_steps(problem, solution)
        assert "=-" not in solution  # no negative values
        assert 0 <= int(problem.answer) < arithmetic.MAX_VALUE


# --- countdown ------------------------------------------------------------------------------

COUNTDOWN = "Numbers: 3 7 25 50 Target: 353"


def test_countdown_accepts_a_valid_solution():
    problem = cd(COUNTDOWN)
    assert problem.answer == "353"
    assert countdown.check(problem, "50*7=350\n350+3=353\nAnswer: 353")
    assert countdown.check(problem, "7*50=350\n3+350=353\nAnswer: 353\n")


@pytest.mark.parametrize("completion, why", [
    ("Answer: 353", "the Answer line alone proves nothing"),
    ("50*7=350\n350+4=354\nAnswer: 353", "correct Answer line after an invalid path"),
    ("50*7=350\n350+3=353\nAnswer: 354", "wrong final answer"),
    ("50*7=351\n351+2=353\nAnswer: 353", "wrong arithmetic"),
    ("50*7=350\n7-3=4\n350+3=353\nAnswer: 353", "number used twice"),
    ("50*7=350\n350+3=353\n350+3=353\nAnswer: 353", "intermediate result used twice"),
    ("25/3=8\n50*7=350\nAnswer: 353", "non-exact division"),
    ("50*7=350\n350+3=353", "no Answer line"),
    ("50*7=350\n350+3=353\n353-25=328\nAnswer: 353", "last result is not the target"),
    ("50*7=350\n350+3=353\nAnswer: 353\nAnswer: 350", "the answer it states last is not"),
])
def test_countdown_rejects_invalid_solutions(completion, why):
    assert not countdown.check(cd(COUNTDOWN), completion), why


def test_countdown_step_checker():
    problem = cd(COUNTDOWN)
    assert countdown.check_step(problem, [], "50*7=350")
    assert countdown.check_step(problem, ["50*7=350"], "350+3=353")
    assert countdown.check_step(problem, ["50*7=350", "350+3=353"], "Answer: 353")
    assert not countdown.check_step(problem, [], "7*7=49")  # 7 given once
    assert not countdown.check_step(problem, [], "3-7=-4")  # not positive
    assert not countdown.check_step(problem, [], "50/3=16")  # not exact
    assert not countdown.check_step(problem, [], "Answer: 353")
    assert not countdown.check_step(problem, ["50*7=351"], "3+25=28")  # after an invalid step
    five = ["3+7=10", "10+25=35", "35+50=85", "85-1=84"]  # 1 is not given: invalid 4th step
    assert not countdown.check_step(problem, five[:3], five[3])
    six = cd("Numbers: 1 2 3 4 5 6 Target: 21")
    path = ["1+2=3", "3+3=6", "6+4=10", "10+5=15", "15+6=21"]
    assert all(countdown.check_step(six, path[:i], s) for i, s in enumerate(path))
    assert not countdown.check_step(six, path[:3] + ["10*5=50", "50-6=44"], "44+1=45")  # 6th op


def test_countdown_solution_search():
    problem = cd(COUNTDOWN)
    solution = countdown.solution(problem)
    assert countdown.check(problem, solution) and solution.endswith("Answer: 353")


@pytest.mark.parametrize("level", list(countdown.LEVELS))
def test_countdown_generation_is_solvable_by_construction(level):
    for problem, worked in countdown.generate_worked(seed=4, count=10, difficulty=level):
        numbers, target = countdown.parse(problem.prompt)
        assert 3 <= len(numbers) <= 6 and level + 1 <= len(numbers)
        assert str(target) == problem.answer and problem.difficulty == level
        assert worked.count("\n") == level and countdown.check(problem, worked)
        if level <= 3:  # exact levels: nothing shorter exists
            assert countdown._search(numbers, target, level - 1) is None


def test_countdown_dead_ends_are_valid_but_not_solvable():
    problem = cd(COUNTDOWN)  # 353 = 50*7 + 3 is the only way
    assert countdown.check_step(problem, [], "3+7=10")
    assert not countdown.still_solvable(problem, ["3+7=10"])
    assert countdown.still_solvable(problem, ["50*7=350"])
    assert countdown.still_solvable(problem, ["50*7=350", "350+3=353"])  # answer next
    assert countdown.still_solvable(problem, [])
    assert not countdown.still_solvable(problem, ["50*7=351"])  # an invalid path
    path = ["3+7=10", "10*50=500", "500-25=475", "Answer: 475"]
    assert step_labels(problem, path) == [1, 1, 1, 0]
    assert solvable_labels(problem, path) == [0, 0, 0, 0]
    right = ["50*7=350", "350+3=353", "Answer: 353"]
    assert solvable_labels(problem, right) == step_labels(problem, right) == [1, 1, 1]


@pytest.mark.parametrize("level", list(countdown.LEVELS))
def test_countdown_solvability_agrees_with_the_solution_search(level):
    """After each possible first step, `still_solvable` says what an exhaustive search of the
    numbers left finds (or the step itself reached the target)."""
    for problem in countdown.generate(seed=5, count=2, difficulty=level):
        numbers, target = countdown.parse(problem.prompt)
        assert countdown.still_solvable(problem, [])
        for i, a in enumerate(numbers):
            for j, b in enumerate(numbers):
                for op in "+-*/":
                    c = countdown._apply(a, op, b)
                    if i == j or c is None:
                        continue
                    rest = [n for k, n in enumerate(numbers) if k not in (i, j)] + [c]
                    expected = c == target or countdown._search(
                        rest, target, countdown.MAX_STEPS - 1) is not None
                    assert countdown.still_solvable(problem, [f"{a}{op}{b}={c}"]) == expected


def test_arithmetic_has_no_dead_ends():
    problem = arith("48+17*3-29*2+11")
    steps = EXAMPLE_SOLUTION.split("\n")
    assert solvable_labels(problem, steps) == step_labels(problem, steps) == [1] * 6
    assert arithmetic.still_solvable(problem, steps[:2])
    assert not arithmetic.still_solvable(problem, ["17*3=52"])


# --- shared ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TASKS))
def test_generation_is_deterministic_by_seed(name):
    task = get_task(name)
    assert task.generate(seed=1, count=30) == task.generate(seed=1, count=30)
    assert task.generate(seed=1, count=30) != task.generate(seed=2, count=30)
    assert task.generate(seed=1, count=10, difficulty=2) != task.generate(seed=1, count=10)
    with pytest.raises(ValueError, match="difficulty"):
        task.generate(seed=1, count=1, difficulty=9)


# The committed adapters' data, the calibrations and every benchmark's seed stream were drawn
# with these generators: a change to the order of their random draws changes all of them.
DRAWN = {"arithmetic": "2028a6dacc77b645", "countdown": "1092e321447c09e9",
         "physics": "b24197bb467627be"}


@pytest.mark.parametrize("name", sorted(DRAWN))
def test_the_generators_draw_the_problems_they_always_drew(name):
    rows = [[p.id, p.prompt, p.answer, p.difficulty, worked] for difficulty in (None, 1)
            for p, worked in get_task(name).generate_worked(500_000, 20, difficulty)]
    assert hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16] == DRAWN[name]


def test_registry_and_prompt_helpers():
    assert get_task("countdown") is countdown
    with pytest.raises(ValueError, match="arithmetic"):
        get_task("sudoku")
    assert from_prompt(EXAMPLE).task == "arithmetic"
    assert from_prompt(COUNTDOWN).task == "countdown"
    assert from_prompt("What is the capital of France?") is None
    assert completion_prompt(from_prompt(EXAMPLE)) == EXAMPLE + "\n"
    assert states_answer("1+1=2\nAnswer: 2\nAnswer: 3", "3")
    assert states_answer("1+1=2\nanswer 2", "2") and not states_answer("1+1=2", "1")


@pytest.mark.parametrize("name, difficulty", [("arithmetic", 3), ("countdown", None)])
def test_jsonl_export(tmp_path, capsys, name, difficulty):
    out = tmp_path / "problems.jsonl"
    args = ["--task", name, "--count", "5", "--seed", "9", "--out", str(out)]
    export_main(args + (["--difficulty", str(difficulty)] if difficulty else []))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and "wrote 5" in capsys.readouterr().out
    for row, problem in zip(rows, get_task(name).generate(9, 5, difficulty)):
        assert set(row) == {"id", "task", "prompt", "answer", "difficulty"}
        assert row == {"id": problem.id, "task": name, "prompt": problem.prompt,
                       "answer": problem.answer, "difficulty": problem.difficulty}
        assert difficulty is None or row["difficulty"] == difficulty
