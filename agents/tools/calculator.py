"""A safe arithmetic evaluator for the `calculator` tool: it walks Python's `ast`, it never calls `eval`.

Accepted: integer and decimal numbers, `+ - * / // % **`, `^` as power (what people and models write),
unary minus and plus, parentheses, the constants `pi` and `e`, and the functions `sqrt`, `abs`, `round`,
`min`, `max`, `floor`, `ceil`, `log` (natural, or `log(x, base)`). Everything else (names, attribute
access, subscripts, strings, comparisons, lambdas) is refused with a `ToolError` that says what was not
allowed, so the model can rephrase.

Limits keep a hostile expression from using the worker's CPU or memory: at most 200 characters, exponents
of at most 10,000 in magnitude, and integer intermediate results of at most 10,000 bits (~3,000 digits).
"""

from __future__ import annotations

import ast
import math
import operator
import re
import typing
from collections.abc import Callable

from agents.errors import ToolError

MAX_LENGTH = 200
MAX_EXPONENT = 10_000
MAX_INT_BITS = 10_000

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def _sqrt(x: Number) -> Number:
    if x < 0:
        raise ToolError(f"sqrt of a negative number ({_format(x)}) is not a real number")
    return math.sqrt(x)


def _log(x: Number, base: Number | None = None) -> Number:
    if x <= 0 or (base is not None and (base <= 0 or base == 1)):
        raise ToolError("log is defined for positive numbers and a positive base other than 1")
    return math.log(x) if base is None else math.log(x, base)


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(x)
    if not isinstance(digits, int):
        raise ToolError("round(x, digits): digits must be a whole number")
    return round(x, digits)


_FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    # name: (implementation, min args, max args)
    "sqrt": (_sqrt, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "min": (min, 1, 20),
    "max": (max, 1, 20),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "log": (_log, 1, 2),
}


def normalise_expression(expression: str) -> str:
    """The expression with the notations people use mapped to Python's: `^` → `**`, `×` → `*`, `÷` → `/`."""
    text = re.sub(r"[\s=?]+$", "", expression.strip())
    return text.replace("^", "**").replace("×", "*").replace("÷", "/").replace("−", "-")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression.

    Raises:
        ToolError: The expression is too long, malformed, uses something not allowed, divides by zero or
            exceeds the size limits; the message says which.
    """
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"the expression is {len(expression)} characters long; the limit is {MAX_LENGTH}")
    text = normalise_expression(expression)
    if not text:
        raise ToolError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"{expression!r} is not a valid arithmetic expression") from None
    try:
        value = _eval(tree.body)
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return tidy(value)


def tidy(value: Number) -> Number:
    """A float rounded to 12 significant digits (0.1 + 0.2 gives 0.3), and a whole float as an int."""
    if isinstance(value, float):
        value = float(f"{value:.12g}")
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
    return value


def _format(value: Number) -> str:
    return str(tidy(value))


def _check_size(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        result: object = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex):  # a negative number to a fractional power
            raise ToolError("the result is not a real number")
        return _check_size(typing.cast(Number, result))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"names are not allowed in an expression: {node.id!r}")
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Attribute):
        raise ToolError("attribute access is not allowed in an expression")
    if isinstance(node, ast.BinOp):
        raise ToolError(f"the operator {type(node.op).__name__} is not allowed")
    raise ToolError(f"{type(node).__name__} is not allowed in an arithmetic expression")


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponent {_format(exponent)} is too large (the limit is {MAX_EXPONENT})")
    big = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if big and max(abs(int(base)).bit_length() - 1, 0) * exponent > MAX_INT_BITS:
        raise ToolError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if base == 0 and exponent < 0:
        raise ZeroDivisionError


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name):
        if isinstance(node.func, ast.Attribute):
            raise ToolError("attribute access is not allowed in an expression")
        raise ToolError("only the functions " + ", ".join(_FUNCTIONS) + " may be called")
    name = node.func.id
    if name not in _FUNCTIONS:
        raise ToolError(f"unknown function {name!r}; allowed: " + ", ".join(_FUNCTIONS))
    if node.keywords:
        raise ToolError(f"{name}() takes positional arguments only")
    function, low, high = _FUNCTIONS[name]
    if not low <= len(node.args) <= high:
        expected = str(low) if low == high else f"{low} to {high}"
        raise ToolError(f"{name}() takes {expected} argument{'s' if high > 1 else ''}, got {len(node.args)}")
    args = [_eval(arg) for arg in node.args]
    return _check_size(function(*args))
