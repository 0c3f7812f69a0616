"""Answer extractors, the vote, the step delimiter's rules, and the probe's disagreement on free
text."""

from __future__ import annotations

import pytest

from search.answers import answer_key, extract_answer, normalize, vote
from search.difficulty.probe import uncertainty
from search.steps import SlowStepPattern, StepDelimiter, split_completion, split_text


@pytest.mark.parametrize(("extractor", "text", "answer"), [
    ("auto", "17*3=51\n51+1=52\nAnswer: 52", "52"),  # the demo's lines, as before
    ("auto", "so 3+4=7", "7"),  # the last number when nothing else is stated
    ("auto", "Answer: 1\nSo the answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
    ("auto", "The capital of France is Paris.", None),
    ("boxed", "\\boxed{x} then \\boxed{ {a}+b }", "{a}+b"),
    ("boxed", "cut off: \\boxed{12", None),
    ("answer", "The answer is $\\text{Paris}$.", "paris"),
    ("last_line", "Step one.\n\nThe capital is Paris.\n\n", "the capital is paris"),
    ("text", "  The Capital   of France\nis PARIS. ", "the capital of france is paris"),
])
def test_extractors(extractor, text, answer):
    assert extract_answer(text, extractor) == answer


def test_free_text_is_its_own_answer_for_telling_answers_apart():
    assert answer_key("Paris.", "auto") == answer_key("paris", "auto") == "paris"
    assert answer_key("The answer is 4", "auto") == answer_key("\\boxed{4}", "auto") == "4"
    assert normalize(" $42$ ") == "42"


def test_the_vote_sums_weights_per_answer_and_sends_each_answers_best_solution():
    # (text, weight, rank)
    solutions = [("Answer: 6", 0.4, 1.0), ("Answer: 5", 0.5, 0.2), ("no answer", 9.0, 9.0),
                 ("Answer: 6", 0.4, 3.0), ("Answer: 5", 0.2, 2.0)]
    voted = vote(solutions, lambda s: extract_answer(s[0]), lambda s: s[1], lambda s: s[2])
    assert voted == [solutions[3], solutions[4]]  # 6 (0.8) before 5 (0.7), the best of each
    tied = [("Answer: 1", 1.0, 0.1), ("Answer: 2", 1.0, 0.9), ("Answer: 1", 0.0, 0.2)]
    assert vote(tied, lambda s: extract_answer(s[0]), lambda s: 1.0, lambda s: s[2]) == [
        tied[2], tied[1]]  # two votes beat one
    assert vote(tied[:2], lambda s: extract_answer(s[0]), lambda s: 1.0, lambda s: s[2]) == [
        tied[1], tied[0]]  # a tie goes to the better-ranked representative
    assert vote([("free text", 1.0, 1.0)], lambda s: extract_answer(s[0], "answer"),
                lambda s: 1.0, lambda s: 1.0) == []


def test_the_probe_measures_disagreement_on_free_text_instead_of_assuming_the_worst():
    d = StepDelimiter()
    agree = ["The capital of France is Paris.", "the capital of France is Paris"] * 2
    assert uncertainty(agree, d, weight=1.0) == 0.0
    split = ["The capital of France is Paris.", "The capital of France is Paris.",
             "It is Lyon.", "Marseille."]
    assert uncertainty(split, d, weight=1.0) == pytest.approx(2 / 3)
    # numbers still decide for the demo's arithmetic
    assert uncertainty(["1+1=2\nAnswer: 2", "x\nAnswer: 2"], d, weight=1.0) == 0.0
    assert uncertainty(["Answer: 2", "Answer: 3"], d, weight=1.0) == 1.0


@pytest.mark.parametrize(("delimiter", "text", "found"), [
    ("\n", "a\nb", (1, 2)),
    ("\n", "\n\na\nb", (3, 4)),  # leading blank lines belong to the step
    ("\n\n", "a.\nb\n\nc", (4, 6)),
    ("\n", "   \n  ", None),  # nothing but blank space: not a step yet
    ({"regex": r"\n[ \t]*\n"}, "a\n  \nb", (1, 5)),
    ({"regex": r"\n[ \t]*\n"}, "a\nb\n", None),  # a line break that is no blank line
    ({"regex": r"(?<=\.)\s", "triggers": [" ", "\n"]}, "x = 1.5 so. Next", (11, 12)),
])
def test_where_a_step_ends(delimiter, text, found):
    assert StepDelimiter.of(delimiter).match(text) == found


def test_a_step_as_verifiers_read_it_keeps_its_indentation():
    d = StepDelimiter.of("\n\n")
    assert d.view("\n\n    total = 1\n    print(total)\n\n") == "    total = 1\n    print(total)"
    assert split_text("a.\n\n\n\nb\n\n  c  \n", d) == ["a.", "b", "  c"]


def test_a_completion_is_cut_at_the_tokens_that_complete_each_delimiter():
    tokens = ["a", ".\n\n", "\n\n", "b", ".\n", "c"]
    ids = list(range(len(tokens)))

    def decode(seq):
        return "".join(tokens[i] for i in seq)

    steps = split_completion(ids, StepDelimiter.of("\n\n"), decode)
    assert [(s.text, s.token_ids) for s in steps] == [("a.", (0, 1)), ("b.\nc", (2, 3, 4, 5))]
    steps = split_completion(ids, StepDelimiter.of("\n"), decode)
    assert [(s.text, s.token_ids) for s in steps] == [("a.", (0, 1)), ("b.", (2, 3, 4)),
                                                      ("c", (5,))]
    # blank space after the last step stays with it: nothing generated is lost
    steps = split_completion([0, 1, 2], StepDelimiter.of("\n\n"), decode)
    assert [(s.text, s.token_ids) for s in steps] == [("a.", (0, 1, 2))]


def test_a_pattern_that_never_finishes_matching_fails_the_request():
    d = StepDelimiter(pattern=r"(\w|\w\w)+\n", triggers=("\n",))
    with pytest.raises(SlowStepPattern):
        d.match("a" * 60 + "!\n")
    with pytest.raises(Exception):
        StepDelimiter(pattern="(")


def test_a_reasoning_models_answer_stays_with_the_step_that_ends_its_thinking():
    tokens = ["<think>", "\nA.", "\n\n", "B.\n", "</think>", "\n\n", "C.", "\n\n", "D."]

    def decode(seq):
        return "".join(tokens[i] for i in seq)

    steps = split_completion(range(len(tokens)), StepDelimiter.of("\n\n"), decode, "</think>")
    assert [s.text for s in steps] == ["<think>\nA.", "B.\n</think>\n\nC.\n\nD."]
    assert [i for s in steps for i in s.token_ids] == list(range(len(tokens)))
