"""Constants that follow from other constants: `derive: "1 << (SECTION_SIZE_BITS - PAGE_SHIFT)"`.

A spec states the value it relies on *and* the rule it follows from, so a change to one constant
that silently breaks another (a new PAGE_SHIFT with the old PAGES_PER_SECTION) is a spec error
naming the line. The expression language is deliberately tiny: integer literals, names of spec
constants, parentheses and + - * << >> & |. It is parsed with `ast` and walked here, never
evaluated by Python, so a spec file cannot run code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping

_OPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
}
_MAX_SHIFT = 64
_MAX_TEXT = 200


class DeriveError(ValueError):
    """The expression is not in the language or names an unknown constant."""


def evaluate(text: str, names: Mapping[str, int]) -> int:
    """The value of `text` over the spec's constants; DeriveError says what is wrong."""
    if len(text) > _MAX_TEXT:
        raise DeriveError(f"expression longer than {_MAX_TEXT} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise DeriveError(f"{text!r} is not an expression") from None
    return _walk(tree.body, names)


def _walk(node: ast.expr, names: Mapping[str, int]) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise DeriveError(f"names {node.id}, which no spec constant defines")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _walk(node.left, names), _walk(node.right, names)
        if isinstance(node.op, (ast.LShift, ast.RShift)) and not 0 <= right <= _MAX_SHIFT:
            raise DeriveError(f"shift by {right} is outside 0..{_MAX_SHIFT}")
        return _OPS[type(node.op)](left, right)
    raise DeriveError("may hold only integers, constant names, ( ) and + - * << >> & |")
