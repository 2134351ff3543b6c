"""One parameter's rule (:class:`Param`): its kind, range or choices, default and one line of meaning, with the checks and
the messages that speak papermill's language; :class:`ParameterError` names the parameter, the rule and the value.
The constructors ``Int``, ``Float``, ``Str``, ``Bool``, ``Path``, ``List`` and ``Dict`` build the rules of the
table in :mod:`ldm_core.study.parameters`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ParameterError", "Param", "Int", "Float", "Str", "Bool", "Path", "List", "Dict"]


class ParameterError(ValueError):
    """A chapter parameter is unknown or has a bad value (the message names it, the rule and the value)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Param:
    """One parameter: its kind, its range or choices, its default and one line of meaning.

    kind : {"int", "float", "str", "bool", "list", "dict", "path"}
        "path" is a string naming a file or folder; the empty string means "not given".
    low, high : float, optional
        Inclusive bounds of an int or float (``low_open`` / ``high_open`` make them strict).
    choices : tuple, optional
        Allowed values of a str, or of each item of a list.
    item : Param, optional
        Rule of each item of a list.
    min_len, max_len : int
        Length bounds of a list.
    check : callable, optional
        ``check(value) -> None or str``: further rule; the string says what is wrong.
    """

    kind: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple | None = None
    item: "Param | None" = None
    min_len: int = 0
    max_len: int | None = None
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def rule(self) -> str:
        """The rule in words, e.g. "an int >= 1" or "a list of 1 or more numbers in (0, 1)"."""
        if self.kind in ("int", "float"):
            noun = "an int" if self.kind == "int" else "a number"
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.low_open else '>='} {self.low:g}")
            if self.high is not None:
                bounds.append(f"{'<' if self.high_open else '<='} {self.high:g}")
            return noun + (" " + " and ".join(bounds) if bounds else "")
        if self.kind == "str":
            return f"one of {list(self.choices)}" if self.choices else "a string"
        if self.kind == "path":
            return "a path (string; empty for the default)"
        if self.kind == "bool":
            return "True or False"
        if self.kind == "list":
            size = f"{self.min_len} or more" if self.max_len is None else (
                f"exactly {self.min_len}" if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}")
            inner = self.item.rule() if self.item else "values"
            return f"a list of {size} items, each {inner}"
        if self.kind == "dict":
            return "a mapping (dict)"
        raise AssertionError(self.kind)

    def problem(self, value: Any) -> str | None:
        """None when ``value`` follows the rule, else what is wrong with it."""
        k = self.kind
        if k == "int" and not _is_int(value):
            return "is not an int"
        if k == "float" and not _is_number(value):
            return "is not a finite number"
        if k in ("str", "path") and not isinstance(value, str):
            return "is not a string"
        if k == "bool" and not isinstance(value, bool):
            return "is not True or False"
        if k == "list" and not isinstance(value, (list, tuple)):
            return "is not a list"
        if k == "dict" and not isinstance(value, dict):
            return "is not a mapping"
        if k in ("int", "float"):
            if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
                return "is out of range"
            if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
                return "is out of range"
        if k == "str" and self.choices and value not in self.choices:
            return "is not an allowed value"
        if k == "list":
            if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
                return f"has {len(value)} items"
            if self.item is not None:
                for i, v in enumerate(value):
                    p = self.item.problem(v)
                    if p:
                        return f"item {i} ({v!r}) {p}"
        if self.check is not None:
            return self.check(value)
        return None


def Int(default: int, doc: str, *, low=None, high=None, **kw) -> Param:
    return Param("int", default, doc, low=low, high=high, **kw)


def Float(default: float, doc: str, *, low=None, high=None, **kw) -> Param:
    return Param("float", default, doc, low=low, high=high, **kw)


def Str(default: str, doc: str, *, choices=None, **kw) -> Param:
    return Param("str", default, doc, choices=tuple(choices) if choices else None, **kw)


def Bool(default: bool, doc: str) -> Param:
    return Param("bool", default, doc)


def Path(default: str, doc: str) -> Param:
    return Param("path", default, doc)


def List(default: list, doc: str, item: Param, *, min_len: int = 1, max_len: int | None = None, **kw) -> Param:
    return Param("list", list(default), doc, item=item, min_len=min_len, max_len=max_len, **kw)


def Dict(default: dict, doc: str, *, check=None) -> Param:
    return Param("dict", dict(default), doc, check=check)


def _item(kind: str, **kw) -> Param:
    return Param(kind, None, "", **kw)
