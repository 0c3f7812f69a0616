"""training.corrupt_steps: one step made wrong, carried on, labelled by the exact checker."""

import json
import random

import pytest

from training import corrupt_steps
from training.components import corruption as cs
from training.components.problems import worked_problems
from training.components.seeds import problem_seed
from training.tasks import get_task, step_labels
from training.tasks.base import apply_op

ARITH = get_task("arithmetic").from_prompt("Compute: 24*16-39+7")
GOLD = ["24*16=384", "384-39=345", "345+7=352", "Answer: 352"]


@pytest.mark.parametrize("kind", ["digit", "carry", "operand"])
def test_an_error_is_carried_on_with_correct_arithmetic_after_it(kind):
    rng = random.Random(3)
    for _ in range(50):
        bad = cs.corrupt(GOLD, rng, kind)
        if bad is None:
            continue
        assert bad != GOLD and len(bad) == len(GOLD)
        first = next(i for i, (a, b) in enumerate(zip(bad, GOLD)) if a != b)
        assert bad[:first] == GOLD[:first]
        # every later operation is right given the numbers it is written with
        for step in bad[first + 1:-1]:
            a, op, b, c = cs._STEP.match(step).groups()
            assert apply_op(int(a), op, int(b)) == int(c)
        assert bad[-1] == f"Answer: {bad[-2].split('=')[1]}"
        labels = step_labels(ARITH, bad)
        assert labels == [1] * first + [0] * (len(bad) - first)


def test_answer_kind_only_changes_the_answer_line():
    bad = cs.corrupt(GOLD, random.Random(0), "answer")
    assert bad[:-1] == GOLD[:-1] and bad[-1] != GOLD[-1]
    assert step_labels(ARITH, bad) == [1, 1, 1, 0]


def test_unparseable_solutions_give_no_variant():
    assert cs.corrupt(["think hard", "Answer: 3"], random.Random(0), "digit") is None


def test_rows_pair_the_worked_solution_with_wrong_variants():
    problem, worked = worked_problems("countdown", problem_seed("corrupt_steps", 0), 1)[0]
    steps, pairs = cs.rows_for(problem, worked, random.Random(1), variants=3)
    assert steps[0]["completions"] == worked.split("\n") and all(steps[0]["exact_labels"])
    assert len(pairs) == len(steps) - 1 >= 1
    for row, pair in zip(steps[1:], pairs):
        assert 0 in row["exact_labels"]
        assert pair == {"prompt": problem.prompt, "chosen": worked,
                        "rejected": "\n".join(row["completions"])}


def test_cli_writes_both_files(tmp_path, capsys):
    assert corrupt_steps.main(["--task", "arithmetic/2-3", "--problems", "4", "--out-dir",
                               str(tmp_path)]) == 0
    steps = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    pairs = (tmp_path / "preferences.jsonl").read_text().splitlines()
    assert len(steps) == 4 + len(pairs) and len(pairs) >= 4
    assert all(set(r) == {"prompt", "completions", "exact_labels"} for r in steps)
    with pytest.raises(SystemExit):
        corrupt_steps.main(["--task", "arithmetic/12", "--out-dir", str(tmp_path)])
