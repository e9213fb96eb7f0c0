"""Parts of a resource described once, then made either as dicts or straight as JSON.

A resource's parts are described by two lists: their :class:`Kind` s, in order, and the
values the kinds are made from, flat. A kind makes its part's dict from its values, and its
``template`` is that dict's JSON with a ``%b`` hole where each value's JSON goes, found by
serialising the dict made from placeholders, so JSON filled in from templates is byte for byte
what ``orjson.dumps`` writes for the dicts. A part many resources share is a kind without
values (:meth:`Kind.shared`), serialised once.

Python pays per operation, not per byte: :func:`json_array` makes a resource's parts with
one join of templates (cached per sequence of kinds), one ``orjson.dumps`` of all values
and one ``%``, where building and then walking the dicts takes some 200 operations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import orjson

__all__ = ["Kind", "dicts", "json_array"]


class Kind:
    """One kind of part: how to make it from its values, and its JSON template."""

    __slots__ = ("arity", "make", "template")

    def __init__(self, make: Callable[..., Any], arity: int) -> None:
        self.make = make
        self.arity = arity
        marks = [f"\x00{i}" for i in range(arity)]  # text that no code table holds
        self.template = _template(orjson.dumps(make(*marks)), marks)

    @classmethod
    def shared(cls, part: Any) -> Kind:
        """The kind of a part that many resources share as it is (it is never changed)."""
        return cls(lambda: part, 0)


def _template(raw: bytes, marks: list[str]) -> bytes:
    """``raw`` JSON as a %-template: each quoted mark, in order, becomes a ``%b`` hole."""
    pieces, rest = [], raw.replace(b"%", b"%%")
    for mark in marks:
        quoted = orjson.dumps(mark)
        before, found, rest = rest.partition(quoted)
        if not found or quoted in rest:
            raise ValueError(f"placeholder {mark!r} is not once, and in order, in {raw!r}")
        pieces.append(before)
    return b"%b".join([*pieces, rest])


def dicts(kinds: Sequence[Kind], values: Sequence[Any]) -> list[Any]:
    """The parts as dicts (shared ones as the very same objects)."""
    made, start = [], 0
    for kind in kinds:
        end = start + kind.arity
        made.append(kind.make(*values[start:end]))
        start = end
    return made


def json_array(kinds: Sequence[Kind], values: Sequence[Any]) -> bytes:
    """The parts as a JSON array, byte for byte ``orjson.dumps(dicts(kinds, values))``."""
    return _array(tuple(kinds)) % _each_json(values)


@lru_cache(maxsize=1024)
def _array(kinds: tuple[Kind, ...]) -> bytes:
    """The template of a JSON array of parts of these kinds (a few hundred sequences occur)."""
    return b"[" + b",".join(kind.template for kind in kinds) + b"]"


def _each_json(values: Sequence[Any]) -> tuple[bytes, ...]:
    """Each value's JSON, split from one orjson array unless a string holds a comma."""
    found = tuple(orjson.dumps(values)[1:-1].split(b","))
    if len(found) == len(values):
        return found
    return tuple(map(orjson.dumps, values))
