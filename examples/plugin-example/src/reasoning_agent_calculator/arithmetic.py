"""Finding and safely evaluating one arithmetic expression in a prompt.

`eval` is never used: the expression is parsed with `ast` and only numbers, + - * / // % **
and parentheses are evaluated, with bounds so no prompt can make the process hang.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable

__all__ = ["NotArithmetic", "evaluate", "find_expression", "format_number"]

MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e100

# Runs of digits, operators, dots, spaces and parentheses; the longest with an operator wins.
_OPERAND = r"[-+(]*\s*[\d.]+\s*\)*"
_OPERATOR = r"(?:\*\*|//|[-+*/%^\u00d7\u00f7])"
_CANDIDATE = re.compile(rf"{_OPERAND}(?:\s*{_OPERATOR}\s*{_OPERAND})+")

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class NotArithmetic(ValueError):
    """The text holds no expression, or one that cannot be evaluated."""


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in `text`, or `None`."""
    candidates = [match.group(0).strip() for match in _CANDIDATE.finditer(text)]
    candidates = [_balanced(candidate) for candidate in candidates]
    return max(candidates, key=len, default=None)


def _balanced(expression: str) -> str:
    """Drops unmatched parentheses at the ends ("(see 2 + 2)" -> "2 + 2")."""
    while expression.count("(") > expression.count(")") and expression.startswith("("):
        expression = expression[1:].lstrip()
    while expression.count(")") > expression.count("(") and expression.endswith(")"):
        expression = expression[:-1].rstrip()
    return expression


def evaluate(expression: str) -> float | int:
    """Evaluates `expression`; raises :class:`NotArithmetic` when it cannot."""
    source = expression.replace("^", "**").replace("\u00d7", "*").replace("\u00f7", "/")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise NotArithmetic(f"{expression!r} is not an arithmetic expression") from None
    try:
        return _value(tree.body)
    except ZeroDivisionError:
        raise NotArithmetic(f"{expression!r} divides by zero") from None
    except OverflowError:
        raise NotArithmetic(f"{expression!r} is too large to compute") from None


def _value(node: ast.expr) -> float | int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise NotArithmetic(f"{node.value} is not a number")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise NotArithmetic(f"exponent {right} is above {MAX_EXPONENT}")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise NotArithmetic("the result is out of range")
        return result
    raise NotArithmetic(f"unsupported syntax: {ast.unparse(node)!r}")


def format_number(value: float | int, precision: int) -> str:
    """Integers as integers; other values rounded to `precision` decimals, without trailing 0s."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{precision}f}".rstrip("0").rstrip(".")
