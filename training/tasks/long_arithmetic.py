"""Long arithmetic chains (issue 35's workload beyond the demo model's 512 positions).

`Compute: 48+17*3-29*2+11...` with `ops` operations, any number of them, in the demo task's
format: the worked solution, the checkers and the answer are `training.tasks.arithmetic`'s.
Level-8 rejection sampling cannot reach a hundred operations (almost every long draw leaves
0..99999), so the chain is built to stay inside: a term is a number or a product of two
(below 10^4), and a term is subtracted only when the running value stays non-negative.
"""

from __future__ import annotations

import random

from training.tasks import arithmetic
from training.tasks.base import Problem

NAME = "arithmetic"
# Operands of level 1 (1..29), whose steps the base model gets right: what the long chains
# measure is the context, not the model's multiplication of two-digit numbers.
MAX_OPERAND = arithmetic.max_operand(1)


def expression(rng: random.Random, ops: int, max_operand: int = MAX_OPERAND) -> str:
    """An expression of exactly `ops` operations whose worked solution stays in 0..99999."""
    nums = [rng.randint(1, max_operand)]
    signs: list[str] = []
    value = nums[0]  # of the current term
    total = 0  # of the finished terms
    first, sign = True, "+"  # the sign that opened the current term
    while len(signs) < ops:
        if signs and signs[-1] != "*" and rng.random() < 1 / 3:  # at most a product of two
            b = rng.randint(1, max_operand)
            signs.append("*")
            nums.append(b)
            value *= b
            continue
        # close the current term, open the next one with + or -
        total = value if first else total + value if sign == "+" else total - value
        first = False
        b = rng.randint(1, max_operand)
        # the next term may be a product of b and another operand, so keep room for it
        sign = "-" if total >= b * max_operand and rng.random() < 0.5 else "+"
        if total + b * max_operand >= arithmetic.MAX_VALUE:
            sign = "-"
        signs.append(sign)
        nums.append(b)
        value = b
    return str(nums[0]) + "".join(s + str(n) for s, n in zip(signs, nums[1:]))


def generate(seed: int, count: int, ops: int) -> list[Problem]:
    """`count` problems of `ops` operations each, deterministic in (seed, ops); every one has a
    valid worked solution (checked)."""
    rng = random.Random(f"long-{NAME}:{seed}:{ops}")
    problems = []
    while len(problems) < count:
        prompt = arithmetic.PREFIX + expression(rng, ops)
        problem = Problem(f"long-{NAME}-{seed}-{ops}-{len(problems)}", NAME, prompt,
                          str(arithmetic.evaluate(prompt)), ops)
        if arithmetic.check_steps(problem, arithmetic.solution(problem)):
            problems.append(problem)
    return problems


def chunk_rows(seed: int, count: int, min_ops: int = 9, max_ops: int = 150) -> list[dict]:
    """Training rows for the state carry-over (`reasoning.context` with carry "state"): what a
    chunk reads and writes. Each row is a long problem after a random number of its worked
    steps, as the state question (`Compute:` the expression that remains) and the rest of
    its worked solution; a trainer's max_length cuts the rest where a chunk would end."""
    rng = random.Random(f"long-{NAME}-chunks:{seed}")
    rows = []
    for i in range(count):
        ops = rng.randint(min_ops, max_ops)
        prompt = arithmetic.PREFIX + expression(rng, ops)
        problem = Problem(f"chunk-{i}", NAME, prompt, str(arithmetic.evaluate(prompt)), ops)
        lines = arithmetic.solution(problem).split("\n")
        done = rng.randint(0, max(len(lines) - 2, 0))
        state = remaining_after(prompt, lines[:done])
        rest = "\n".join(lines[done:])
        rows.append({"prompt": state + "\n", "completion": rest})
    return rows


def remaining_after(prompt: str, steps: list[str]) -> str:
    """The `Compute:` question left after valid worked `steps` of `prompt`."""
    nums, ops = arithmetic.parse(prompt)  # type: ignore[misc]
    state = (nums, ops)
    for step in steps:
        state = arithmetic._reduce(state, step)  # noqa: SLF001 -- the task's own reduction
        assert state is not None, f"{step!r} is not a valid step of {prompt!r}"
    nums, ops = state
    return arithmetic.PREFIX + str(nums[0]) + "".join(o + str(n) for o, n in zip(ops, nums[1:]))


def main(argv: list[str] | None = None) -> None:
    """`python -m training.tasks.long_arithmetic --count N --seed S --out rows.jsonl`: the
    state carry-over's training rows (`chunk_rows`) as prompt/completion JSONL."""
    import argparse

    from training.components.jsonl import write_jsonl

    parser = argparse.ArgumentParser(prog="python -m training.tasks.long_arithmetic",
                                     description=main.__doc__)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-ops", type=int, default=9)
    parser.add_argument("--max-ops", type=int, default=150)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    n = write_jsonl(chunk_rows(args.seed, args.count, args.min_ops, args.max_ops), args.out)
    print(f"wrote {n} rows to {args.out}")


if __name__ == "__main__":
    main()
