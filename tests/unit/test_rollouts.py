"""training.rollouts' engine-free pieces: pairing, Math-Shepherd labels, prompts, row shapes."""

import json

import pytest

from training import rollouts
from training.components import math_shepherd as ms
from training.components.problems import draw_problems
from training.tasks import completion_prompt, get_task

RIGHT = "3*2=6\n2+6=8\nAnswer: 8"
RIGHT_2 = "3*2=6\n2+6=8\n\nAnswer: 8\n"  # same solution, different whitespace
WRONG = "3*2=5\n2+5=7\nAnswer: 7"
WRONG_2 = "3*2=6\n2+6=9\nAnswer: 9"


def test_solution_text_keeps_steps_up_to_the_answer():
    assert ms.solution_text("  2+3=5 \n\nAnswer: 5\ntrailing junk") == "2+3=5\nAnswer: 5"
    assert ms.solution_text("") == ""


def test_pairs_right_with_wrong_and_dedup():
    samples = [(ms.solution_text(RIGHT), True), (ms.solution_text(RIGHT_2), True),
               (WRONG, False), (WRONG, False), (WRONG_2, False)]
    pairs = ms.preference_pairs("Compute: 2+3*2", samples)
    assert pairs == [
        {"prompt": "Compute: 2+3*2", "chosen": RIGHT, "rejected": WRONG},
        {"prompt": "Compute: 2+3*2", "chosen": RIGHT, "rejected": WRONG_2},
    ]


def test_no_pairs_without_both_kinds_or_for_empty_solutions():
    assert ms.preference_pairs("p", [(RIGHT, True), (RIGHT, True)]) == []
    assert ms.preference_pairs("p", [(WRONG, False)]) == []
    assert ms.preference_pairs("p", [(RIGHT, True), ("", False)]) == []


def test_pair_cap_spreads_over_different_solutions():
    samples = [("a1", True), ("a2", True), ("a3", True), ("b1", False), ("b2", False)]
    assert len(ms.preference_pairs("p", samples)) == 6
    capped = ms.preference_pairs("p", samples, max_pairs=2)
    assert [(r["chosen"], r["rejected"]) for r in capped] == [("a1", "b1"), ("a1", "b2")]
    capped = ms.preference_pairs("p", samples, max_pairs=3)
    assert {r["chosen"] for r in capped} == {"a1", "a2"} and len(capped) == 3
    assert len(ms.preference_pairs("p", samples, max_pairs=0)) == 6  # 0: no cap


def test_prefix_prompt():
    prompt = "Compute: 2+3*2\n"
    assert ms.prefix_prompt(prompt, []) == prompt
    assert ms.prefix_prompt(prompt, ["3*2=6"]) == "Compute: 2+3*2\n3*2=6\n"
    assert ms.prefix_prompt(prompt, ["3*2=6", "2+6=8"]) == "Compute: 2+3*2\n3*2=6\n2+6=8\n"


def test_prefixes_to_expand_skip_the_answer_step():
    steps = RIGHT.split("\n")
    assert ms.prefixes_to_expand(steps) == [("3*2=6",), ("3*2=6", "2+6=8")]
    unfinished = ["3*2=6", "2+6="]  # truncated: no Answer line, every step is expanded
    assert ms.prefixes_to_expand(unfinished) == [("3*2=6",), ("3*2=6", "2+6=")]


def test_hard_and_soft_labels():
    assert ms.hard_label([False, True, False, False]) == 1
    assert ms.soft_label([False, True, False, False]) == 0.25
    assert (ms.hard_label([False, False]), ms.soft_label([False, False])) == (0, 0.0)
    assert (ms.hard_label([]), ms.soft_label([])) == (0, 0.0)


def test_label_steps_from_continuation_outcomes():
    steps = WRONG_2.split("\n")  # 3*2=6 good, 2+6=9 wrong, Answer wrong
    outcomes = {("3*2=6",): [True, False, True, True],
                ("3*2=6", "2+6=9"): [False, False, False, False]}
    hard, soft = ms.label_steps(steps, outcomes, solution_correct=False)
    assert hard == [1, 0, 0]
    assert soft == [0.75, 0.0, 0.0]
    # the Answer step of a right solution is good without any continuations
    right = RIGHT.split("\n")
    hard, soft = ms.label_steps(right, {("3*2=6",): [True], ("3*2=6", "2+6=8"): [True]}, True)
    assert hard == [1, 1, 1] and soft == [1.0, 1.0, 1.0]


def test_soft_zero_iff_hard_zero():
    for outcomes in ([True], [False], [True, False], [False, False, False], [False, True, True]):
        assert (ms.soft_label(outcomes) == 0) == (ms.hard_label(outcomes) == 0)


def test_step_row_shape_matches_the_prm_recipe():
    row = ms.step_row("Compute: 3*2", ["3*2=6", "Answer: 6"], [1, 1], [0.5, 1.0])
    assert row == {"prompt": "Compute: 3*2", "completions": ["3*2=6", "Answer: 6"],
                   "labels": [1, 1], "soft_labels": [0.5, 1.0]}
    json.dumps(row)
    with pytest.raises(ValueError):
        ms.step_row("p", ["a", "b"], [1], [1.0])
    with_exact = ms.step_row("Compute: 3*2", ["3*2=5", "Answer: 5"], [0, 0], [0.0, 0.0],
                             [False, False])
    assert with_exact["exact_labels"] == [0, 0]


def test_agreement():
    assert ms.agreement([1, 0, 1, 1], [True, False, False, True]) == 0.75
    assert ms.agreement([], []) is None
    with pytest.raises(ValueError):
        ms.agreement([1], [])


def test_rollout_problems_come_from_their_own_seed_stream():
    problems = draw_problems(["arithmetic/3-5", "countdown"], "rollouts", seed=0, count=6)
    assert len(problems) == 12
    assert {p.difficulty for p in problems if p.task == "arithmetic"} == {3, 4, 5}
    assert all("3000000" in p.id for p in problems)  # the committed reward models' rollouts
    # a repeated selector adds no repeated prompts
    assert len(draw_problems(["countdown", "countdown"], "rollouts", seed=0, count=5)) == 5


def test_build_rows_from_scripted_samples_and_continuations():
    problem = get_task("arithmetic").from_prompt("Compute: 2+3*2")
    samples = [[RIGHT, RIGHT_2, WRONG_2, "no steps at all?", ""]]
    solutions = [[s.split("\n") for s in ms.unique(ms.solution_text(c) for c in samples[0])]]
    keys = ms.continuation_keys([problem], solutions)
    # ("3*2=6",) is shared by the right and the wrong solution: one request
    assert keys == [(0, ("3*2=6",)), (0, ("3*2=6", "2+6=8")), (0, ("3*2=6", "2+6=9")),
                    (0, ("no steps at all?",))]
    assert ms.prefix_prompt(completion_prompt(problem), keys[2][1]) == \
        "Compute: 2+3*2\n3*2=6\n2+6=9\n"
    outcomes = {keys[0]: [True, False], keys[1]: [True, True], keys[2]: [False, False],
                keys[3]: [False, False]}
    pairs, rows, counts = ms.build_rows([problem], samples, outcomes, max_pairs=0)
    assert pairs == [{"prompt": problem.prompt, "chosen": RIGHT, "rejected": WRONG_2},
                     {"prompt": problem.prompt, "chosen": RIGHT, "rejected": "no steps at all?"}]
    assert [r["labels"] for r in rows] == [[1, 1, 1], [1, 0, 0], [0]]
    assert [r["soft_labels"] for r in rows] == [[0.5, 1.0, 1.0], [0.5, 0.0, 0.0], [0.0]]
    assert [r["exact_labels"] for r in rows] == [[1, 1, 1], [1, 0, 0], [0]]
    assert counts["problems"] == 1 and counts["solutions"] == 5 and counts["unique_solutions"] == 3
    assert counts["sample_accuracy"] == 0.4 and counts["pairs"] == 2 and counts["steps"] == 7
    # check_step: right path all valid; 2+6=9 and its Answer invalid; the junk line invalid
    assert counts["exact_good_step_fraction"] == pytest.approx(4 / 7, abs=1e-4)
    assert counts["hard_label_agreement_with_check_step"] == 1.0
    assert counts["by_task"]["arithmetic"]["steps"] == 7
    assert counts["by_task"]["arithmetic"]["sample_accuracy"] == 0.4


def test_build_rows_without_continuations_keep_the_checker_labels_only():
    problem = get_task("arithmetic").from_prompt("Compute: 2+3*2")
    pairs, rows, counts = ms.build_rows([problem], [[RIGHT, WRONG_2]], None, max_pairs=0)
    assert len(pairs) == 1
    assert rows == [{"prompt": problem.prompt, "completions": RIGHT.split("\n"),
                     "exact_labels": [1, 1, 1]},
                    {"prompt": problem.prompt, "completions": WRONG_2.split("\n"),
                     "exact_labels": [1, 0, 0]}]
    assert counts["steps"] == 6 and counts["exact_good_step_fraction"] == pytest.approx(4 / 6,
                                                                                         abs=1e-4)
    assert counts["good_step_fraction"] is None
    assert counts["by_task"]["arithmetic"]["good_step_fraction"] is None


def test_cli_checks_arguments(tmp_path):
    parser = rollouts.build_parser()
    args = parser.parse_args(["--task", "arithmetic/3-5", "--out-dir", str(tmp_path)])
    assert rollouts.check_args(args) == []
    bad = parser.parse_args(["--task", "arithmetic/9-12", "--samples", "0",
                             "--continuations", "-1"])
    errors = " ".join(rollouts.check_args(bad))
    assert "arithmetic levels" in errors and "--samples" in errors and "--out-dir" in errors
    assert "--continuations" in errors
    none = parser.parse_args(["--task", "countdown", "--continuations", "0", "--out-dir", "x"])
    assert rollouts.check_args(none) == []
    with pytest.raises(SystemExit):
        rollouts.main(["--out-dir", str(tmp_path)])  # no --task


def test_config_file_sets_defaults_and_flags_win(tmp_path):
    config = tmp_path / "rollouts.yaml"
    config.write_text("# python -m training.rollouts --config rollouts.yaml\n"
                      "task: [countdown]\nsamples: 3\ncontinuations: 2\nmax-pairs-per-problem: 4\n")
    from training.components.config import parse_with_config

    args = parse_with_config(rollouts.build_parser(), ["--config", str(config), "--samples", "5"])
    assert args.task == ["countdown"] and args.samples == 5 and args.continuations == 2
    assert args.max_pairs_per_problem == 4


def test_request_seeds_are_distinct_per_run_phase_and_request():
    seeds = {rollouts.request_seed(run, phase, i)
             for run in (0, 1) for phase in (0, 1) for i in (0, 1, 9_999_999)}
    assert len(seeds) == 12
