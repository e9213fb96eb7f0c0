"""Parts of a resource described once, then made either as dicts or straight as JSON.

A resource's parts are described by two lists: their :class:`Kind` s, in order, and the
values the kinds are made from, flat. A kind makes its part's dict from its values; a part
many resources share is a kind without values (:meth:`Kind.shared`).

Python pays per operation, not per byte. Resources whose parts are of the same kinds, in
the same order, differ only in their id and in the values, so a :class:`ResourceTemplate`
encodes one probe resource made of placeholders, once, and each resource is then one
``orjson.dumps`` of its values and one join, where building and then serialising the dicts
takes some 200 operations. The placeholders are found again in the probe's encoding, so a
filled template is byte for byte what encoding the resource itself gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

__all__ = ["ID_MARK", "Kind", "ResourceTemplate", "dicts", "marks"]

#: stands for a resource's id in a probe resource (see :class:`ResourceTemplate`)
ID_MARK = "\x01id"


class Kind:
    """One kind of part: how to make it from its values."""

    __slots__ = ("arity", "make")

    def __init__(self, make: Callable[..., Any], arity: int) -> None:
        self.make = make
        self.arity = arity

    @classmethod
    def shared(cls, part: Any) -> Kind:
        """The kind of a part that many resources share as it is (it is never changed)."""
        return cls(lambda: part, 0)


def marks(count: int) -> list[str]:
    """Placeholders for ``count`` values: text that no code table holds."""
    return [f"\x00{i}" for i in range(count)]


def dicts(kinds: Sequence[Kind], values: Sequence[Any]) -> list[Any]:
    """The parts as dicts (shared ones as the very same objects)."""
    made, start = [], 0
    for kind in kinds:
        end = start + kind.arity
        made.append(kind.make(*values[start:end]))
        start = end
    return made


class ResourceTemplate:
    """An encoded resource with holes: for its id, wherever the encoding repeats it, and
    for the values of its parts; found in the encoding of a probe resource made of
    :data:`ID_MARK` and :func:`marks`.
    """

    __slots__ = ("after", "before", "pieces")

    def __init__(self, probe: bytes, values: int) -> None:
        # the id as JSON strings hold it, and as written straight into the encoding
        escaped, plain = orjson.dumps(ID_MARK)[1:-1], ID_MARK.encode()
        raw = probe.replace(escaped, plain)
        quoted = [orjson.dumps(m) for m in marks(values)]
        first = raw.find(quoted[0]) if quoted else len(raw)
        end = raw.find(quoted[-1]) + len(quoted[-1]) if quoted else len(raw)
        #: how many times the id occurs before the values, and after them
        self.before, self.after = raw[:first].count(plain), raw[end:].count(plain)
        if self.before + self.after != raw.count(plain):
            raise ValueError("the id occurs between the values of the parts")
        if any(raw.count(mark) != 1 for mark in quoted):
            raise ValueError("a value's placeholder is not in the probe exactly once")
        #: the encoding between its holes: the ids before, the values, the ids after
        self.pieces = _holes(raw, [plain] * self.before + quoted + [plain] * self.after)

    def fill(self, rid: bytes, values: Sequence[Any]) -> bytes:
        """The encoded resource with id ``rid`` (ASCII) and these part values."""
        filled = (rid,) * self.before + _each_json(values) + (rid,) * self.after
        pieces = self.pieces
        out = [pieces[0]]
        for value, piece in zip(filled, pieces[1:], strict=True):
            out += (value, piece)
        return b"".join(out)


def _holes(raw: bytes, marks: list[bytes]) -> tuple[bytes, ...]:
    """``raw`` cut at each of ``marks``, found in order."""
    pieces, rest = [], raw
    for mark in marks:
        before, found, rest = rest.partition(mark)
        if not found:
            raise ValueError(f"placeholder {mark!r} is not in order in {raw!r}")
        pieces.append(before)
    return (*pieces, rest)


def _each_json(values: Sequence[Any]) -> tuple[bytes, ...]:
    """Each value's JSON, split from one orjson array unless a string holds a comma."""
    found = tuple(orjson.dumps(values)[1:-1].split(b","))
    if len(found) == len(values):
        return found
    return tuple(map(orjson.dumps, values))
