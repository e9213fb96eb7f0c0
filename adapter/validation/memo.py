"""Outcomes remembered for shared objects: checked once per element, then recalled.

A conversion puts the same objects (codes, categories, the subject, whole components for
the genome build or the allelic state) into every one of a million Variants. Within
:meth:`Validator.sharing` the builder declares such objects shared, a promise that they are
never changed; each is then checked once under each compiled node and the outcome reused.
Objects are remembered by identity and held until the block ends, so an id cannot be reused
by another object meanwhile. Only checks outside a Bundle context are remembered: inside a
Bundle, reference targets depend on the other entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .findings import Finding, Found
from .structure import Node

__all__ = ["Memo", "recall"]

_T = TypeVar("_T")
#: a remembered outcome: each finding as (message, trail, severity, profile)
_Kept = tuple[tuple[str, tuple[str, ...], str, str | None], ...] | None
#: id(object) -> (the object, kept alive; its outcome under each node checked so far)
Entries = dict[int, tuple[Any, dict[Node, _Kept]]]


class Memo:
    """The shared objects of the open :meth:`sharing` blocks, with their outcomes."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: Entries = {}

    @contextmanager
    def sharing(self) -> Iterator[Callable[[_T], _T]]:
        """A block, and the function that declares a JSON value shared within it.

        Every object inside a declared value is shared too. Blocks may overlap (threads of
        a service): an object stays remembered until the block that declared it first ends.
        """
        added: list[int] = []

        def share(value: _T) -> _T:
            for obj in _objects(value):
                key = id(obj)
                if key not in self.entries:
                    self.entries[key] = (obj, {})
                    added.append(key)
            return value

        try:
            yield share
        finally:
            for key in added:
                self.entries.pop(key, None)


def recall(entry: tuple[Any, dict[Node, _Kept]], node: Node, check: Callable[..., Found]) -> Found:
    """The outcome of ``node``'s check on a shared object: checked the first time only.

    ``check(obj, None, True)`` runs the check itself, past the recall at its start.
    """
    obj, outcomes = entry
    try:
        kept = outcomes[node]
    except KeyError:
        kept = outcomes[node] = _keep(check(obj, None, True))
    return _revive(kept)


def _keep(found: Found) -> _Kept:
    """An outcome in a form nothing can change (findings collect their paths in place)."""
    if not found:
        return None
    return tuple((f.message, tuple(f.trail), f.severity, f.profile) for f in found)


def _revive(kept: _Kept) -> Found:
    """Fresh findings from a kept outcome."""
    if kept is None:
        return None
    revived = []
    for message, trail, severity, profile in kept:
        f = Finding(message, severity=severity)
        f.trail = list(trail)
        f.profile = profile
        revived.append(f)
    return revived


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``value``, itself included."""
    if type(value) is dict:
        yield value
        for child in value.values():
            yield from _objects(child)
    elif type(value) is list:
        for child in value:
            yield from _objects(child)
