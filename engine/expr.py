"""A tiny, safe arithmetic evaluator for composite property values (spec 8.1).

After ``${key}`` substitution a value such as ``"(8-4)/2"``, ``"3+5"`` or ``"4*16"`` is
evaluated: numbers, ``+ - * /``, unary minus and parentheses, with the usual precedence and
left associativity (the original split at the first ``+``, else ``-``, ``*``, ``/`` and recursed
on the right, so ``a-b-c`` meant ``a-(b-c)``; no shipped file depends on that, and we keep the
arithmetic everyone expects). No ``eval``: a recursive-descent parser over a token list.
A value without any operator (``"ReLU"``, ``""``, ``"3"``) is returned unchanged.
"""

from __future__ import annotations

import math
import re

_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|(.))")
_OPS = set("+-*/()")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing spaces left
            break
        number, op = m.groups()
        if number is None and op not in _OPS:
            raise ValueError(f"unexpected {op!r} in an arithmetic expression")
        out.append(number if number is not None else op)
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise ValueError("the expression ends too early")
        self.i += 1
        return tok

    def expr(self) -> float:
        value = self.term()
        while self.peek() in ("+", "-"):
            op, rhs = self.take(), self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> float:
        value = self.factor()
        while self.peek() in ("*", "/"):
            op, rhs = self.take(), self.factor()
            if op == "/" and rhs == 0:
                raise ValueError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def factor(self) -> float:
        tok = self.take()
        if tok == "-":
            return -self.factor()
        if tok == "+":
            return self.factor()
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise ValueError("missing ')'")
            return value
        if tok in _OPS:
            raise ValueError(f"unexpected {tok!r}")
        return float(tok)


def evaluate(text: str, kind: str | None = None) -> str:
    """Evaluate ``text`` if it is arithmetic; format the result for a property of ``kind``
    (``"int"``: truncated toward zero, as Java's ``(int)``; ``"float"``: a decimal; else an
    integer when the value is whole). Raises ``ValueError`` on a malformed expression."""
    if not any(c in text for c in "+-*/()"):
        return text
    if not re.fullmatch(r"[\d\s.eE+\-*/()]*", text):
        return text  # words with a dash, e.g. a type name: not arithmetic
    parser = _Parser(_tokens(text))
    value = parser.expr()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()!r}")
    if not math.isfinite(value):
        raise ValueError("the result is not finite")
    if kind == "int" or (kind != "float" and value.is_integer()):
        return str(math.trunc(value))
    return repr(value)
