"""Arithmetic claims in text (`17*3=51`, `(2+3)*4 = 20`), evaluated without eval()."""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass

# An expression of integers, + - * / and parentheses, then '=', then an integer.
CLAIM = re.compile(r"([\d\s+\-*/()]*\d[\d\s+\-*/()]*)=\s*(-?\d+)")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
MAX_MAGNITUDE = 10**12  # refuse to compute absurd numbers (a claim about them is not checked)


@dataclass(frozen=True)
class Claim:
    expression: str
    stated: int


def find_claims(text: str) -> list[Claim]:
    return [Claim(m.group(1).strip(), int(m.group(2))) for m in CLAIM.finditer(text)
            if m.group(1).strip()]


def evaluate(expression: str) -> int | None:
    """The exact value of an integer expression; None when malformed, inexact or too large."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return None
    return _value(tree.body)


def _value(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div):
            return left // right if right != 0 and left % right == 0 else None
        op = _OPS.get(type(node.op))
        result = op(left, right) if op else None
        return result if result is not None and abs(result) <= MAX_MAGNITUDE else None
    return None
