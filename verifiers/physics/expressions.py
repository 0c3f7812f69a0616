"""Formulas as text (`u+a*t`, `sqrt(2*E/m)`, `a*t^2/2`) evaluated without eval(): over plain
numbers, pint quantities (a dimension error raises pint's DimensionalityError) or sympy symbols."""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import sympy

NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
FUNCTIONS = {"sqrt"}
MAX_EXPONENT = 4  # a formula's powers are small integers (t^2, v^2); anything else is not read
MAX_LENGTH = 200
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv}


class Unreadable(ValueError):
    """The text is not a formula this module reads."""


def parse(text: str) -> ast.expr:
    if len(text) > MAX_LENGTH:
        raise Unreadable("too long")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise Unreadable(str(exc)) from None
    _check(tree.body)
    return tree.body


def names(text: str) -> set[str]:
    """The quantity names a formula uses (function names left out); Unreadable if malformed."""
    return {n.id for n in ast.walk(parse(text)) if isinstance(n, ast.Name)} - FUNCTIONS


def is_numeric(text: str) -> bool:
    try:
        return not names(text)
    except Unreadable:
        return False


def evaluate(text: str, values: Mapping[str, Any], sqrt: Callable[[Any], Any] = math.sqrt) -> Any:
    """The formula's value with each name replaced by `values[name]` (KeyError when a name is
    missing); numbers stay Python numbers, so pint and sympy values combine with them."""
    return _value(parse(text), values, sqrt)


def symbolic(text: str) -> sympy.Expr:
    """The formula as a sympy expression over positive real symbols."""
    found = names(text)
    symbols = {n: sympy.Symbol(n, positive=True) for n in found}
    return evaluate(text, symbols, sympy.sqrt)


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise Unreadable("not a number")
    elif isinstance(node, ast.Name):
        pass
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        _check(node.operand)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        _check(node.left)
        exponent = node.right
        if not (isinstance(exponent, ast.Constant) and type(exponent.value) is int
                and 0 <= exponent.value <= MAX_EXPONENT):
            raise Unreadable("a power is a small whole number")
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
          and node.func.id in FUNCTIONS and len(node.args) == 1 and not node.keywords):
        _check(node.args[0])
    else:
        raise Unreadable(f"{type(node).__name__} is not part of a formula")


def _value(node: ast.AST, values: Mapping[str, Any], sqrt: Callable[[Any], Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        inner = _value(node.operand, values, sqrt)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call):
        return sqrt(_value(node.args[0], values, sqrt))
    left = _value(node.left, values, sqrt)  # type: ignore[attr-defined]
    if isinstance(node.op, ast.Pow):  # type: ignore[attr-defined]
        return left ** node.right.value  # type: ignore[attr-defined]
    return _BINARY[type(node.op)](left, _value(node.right, values, sqrt))  # type: ignore


def substitute(text: str, values: dict[str, str]) -> str:
    """The formula's text with each quantity name replaced by `values[name]` (names without a
    value, and function names, stay)."""
    return NAME.sub(lambda m: m.group(0) if m.group(0) in FUNCTIONS
                    else values.get(m.group(0), m.group(0)), text)
