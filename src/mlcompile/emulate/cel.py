"""The subset of CEL that kfp's compiler writes into `triggerPolicy.condition` for dsl.If /
Elif / Else: `inputs.parameter_values['x']`, `int(...)`, `double(...)`, string / number /
boolean literals, `== != < <= > >=`, `!`, `&&`, `||` and parentheses."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\].,])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)


class ConditionError(ValueError):
    """A condition outside the supported subset, or one that refers to a missing input."""


def evaluate(condition: str, parameter_values: Mapping[str, Any]) -> bool:
    parser = _Parser(condition, parameter_values)
    value = parser.disjunction()
    if parser.peek() is not None:
        raise ConditionError(f"{condition!r}: unexpected {parser.peek()!r}")
    if not isinstance(value, bool):
        raise ConditionError(f"{condition!r}: evaluates to {value!r}, not a boolean")
    return value


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if not match:
            raise ConditionError(f"{text!r}: cannot read from {text[at:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, values: Mapping[str, Any]) -> None:
        self.text, self.values, self.tokens, self.at = text, values, _tokens(text), 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise ConditionError(f"{self.text!r}: ends early")
        token = self.tokens[self.at]
        if expected is not None and token[1] != expected:
            raise ConditionError(f"{self.text!r}: expected {expected!r}, found {token[1]!r}")
        self.at += 1
        return token

    def disjunction(self) -> Any:
        return self._chain("||", self.conjunction, lambda left, right: left or right)

    def conjunction(self) -> Any:
        return self._chain("&&", self.comparison, lambda left, right: left and right)

    def _chain(self, operator: str, operand: Callable[[], Any], combine: Callable[[bool, bool], bool]) -> Any:
        value = operand()
        while self.peek() == operator:
            self.take()
            right = operand()  # CEL evaluates both sides; an error on either is an error
            value = combine(self._bool(value), self._bool(right))
        return value

    def comparison(self) -> Any:
        left = self.unary()
        operator = self.peek()
        if operator not in ("==", "!=", "<", "<=", ">", ">="):
            return left
        self.take()
        right = self.unary()
        if operator == "==":
            return left == right and type(left) is type(right) or _numbers(left, right) and left == right
        if operator == "!=":
            return not (left == right and (type(left) is type(right) or _numbers(left, right)))
        if not (_numbers(left, right) or (isinstance(left, str) and isinstance(right, str))):
            raise ConditionError(f"{self.text!r}: cannot order {left!r} and {right!r}")
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[operator]

    def unary(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self._bool(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.disjunction()
            self.take(")")
            return value
        if kind == "number":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "string":
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        if kind != "name":
            raise ConditionError(f"{self.text!r}: unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if text in ("int", "double", "string"):
            self.take("(")
            value = self.disjunction()
            self.take(")")
            return _cast(text, value, self.text)
        if text == "inputs":
            self.take(".")
            self.take("parameter_values")
            self.take("[")
            kind, key = self.take()
            if kind != "string":
                raise ConditionError(f"{self.text!r}: parameter_values takes a quoted name")
            self.take("]")
            name = key[1:-1]
            if name not in self.values:
                raise ConditionError(f"{self.text!r}: no input parameter {name!r}")
            return self.values[name]
        raise ConditionError(f"{self.text!r}: unknown name {text!r}")

    def _bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConditionError(f"{self.text!r}: {value!r} is not a boolean")
        return value


def _numbers(left: Any, right: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))


def _cast(kind: str, value: Any, text: str) -> Any:
    try:
        if kind == "int":
            return int(float(value)) if isinstance(value, str) else int(value)
        if kind == "double":
            return float(value)
        return value if isinstance(value, str) else ("true" if value is True else "false" if value is False else str(value))
    except (TypeError, ValueError) as exc:
        raise ConditionError(f"{text!r}: {kind}({value!r}): {exc}") from exc
