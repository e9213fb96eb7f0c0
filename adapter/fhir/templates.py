"""Parts of a resource described once and made either as dicts or straight as JSON.

A part is an *entry*, ``(kind, values)``: a :class:`Kind` makes the part's dict from the
values, and its ``template`` is that dict's JSON with ``%b`` where each value's JSON goes,
found by serialising the dict made from placeholders, so JSON written from the template
cannot differ from ``orjson.dumps`` of the dict. A part shared by many resources is a kind
with no values (:func:`shared`), serialised once.

Writing JSON this way costs a few C calls per resource instead of building and walking
every dict; builders use it when nothing needs to read the dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from operator import attrgetter, itemgetter
from typing import Any

import orjson

__all__ = ["Entry", "Kind", "dicts", "json_array", "shared"]


class Kind:
    """One kind of part: how to make it from its values, and its JSON template."""

    __slots__ = ("make", "template")

    def __init__(self, make: Callable[..., Any], arity: int) -> None:
        self.make = make
        marks = [f"\x00{i}" for i in range(arity)]  # text no code table holds
        self.template = _template(orjson.dumps(make(*marks)), marks)


#: a part of a resource: its kind and the values that kind is made from
Entry = tuple[Kind, tuple[Any, ...]]


def shared(part: Any) -> Entry:
    """The entry of a part that many resources share as it is (never changed)."""
    return Kind(lambda: part, 0), ()


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


def dicts(entries: Sequence[Entry]) -> list[Any]:
    """The parts as dicts (shared ones as the very same objects)."""
    return [kind.make(*values) for kind, values in entries]


_TEMPLATE = attrgetter("template")
_KIND = itemgetter(0)
_VALUES = itemgetter(1)


def json_array(entries: Sequence[Entry]) -> bytes:
    """The parts as a JSON array, byte for byte as ``orjson.dumps(dicts(entries))``."""
    template = b",".join(map(_TEMPLATE, map(_KIND, entries)))
    values = tuple(chain.from_iterable(map(_VALUES, entries)))
    return b"[" + template % _each_json(values) + b"]"


def _each_json(values: tuple[Any, ...]) -> tuple[bytes, ...]:
    """Each value's JSON, split from one orjson array unless a string holds a comma."""
    found = tuple(orjson.dumps(values)[1:-1].split(b","))
    if len(found) == len(values):
        return found
    return tuple(map(orjson.dumps, values))
