"""training.tasks.long_arithmetic: long chains in the demo format with valid worked solutions,
and the state carry-over's training rows."""

from __future__ import annotations

from training.tasks import arithmetic, long_arithmetic
from verifiers.states.arithmetic import remaining


def test_long_chains_have_exactly_their_operations_and_valid_solutions():
    for ops in (16, 72, 146):
        problems = long_arithmetic.generate(5, 4, ops)
        assert problems == long_arithmetic.generate(5, 4, ops)  # deterministic
        for p in problems:
            nums, signs = arithmetic.parse(p.prompt)
            assert len(signs) == ops and max(nums) <= long_arithmetic.MAX_OPERAND
            assert arithmetic.check_steps(p, arithmetic.solution(p))


def test_a_chunk_row_is_a_state_the_server_derives_and_the_rest_of_its_solution():
    for row in long_arithmetic.chunk_rows(1, 30):
        question = row["prompt"].rstrip("\n")
        problem = arithmetic.from_prompt(question)
        assert row["completion"] == arithmetic.solution(problem)
    prompt = long_arithmetic.generate(2, 1, 30)[0].prompt
    steps = arithmetic.solution(arithmetic.from_prompt(prompt)).split("\n")[:7]
    # the training rows' state is the one the server's state plugin derives
    assert long_arithmetic.remaining_after(prompt, steps) == \
        remaining(prompt, "\n".join(steps) + "\n")
