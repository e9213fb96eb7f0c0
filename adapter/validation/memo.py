"""Outcomes remembered for shared objects: checked once per check, then recalled.

A conversion puts the same objects (codes, categories, the subject, whole components for
the genome build or the allelic state) into every one of a million Variants. Within
:meth:`Validator.sharing` the builder declares such objects shared, a promise that they are
never changed; each is then checked once by each check that meets it and the outcome reused.
Objects are remembered by identity and held until the block ends, so an id cannot be reused
by another object meanwhile. Only checks outside a Bundle context are remembered: inside a
Bundle, reference targets depend on the other entries.

A check's outcome is kept under the check's key: a compiled node (the object checked against
it), a property (the object checked as a value of it: the node, then fixed, pattern, binding
and targets) or a slicing (the slice the object matches, and its outcome there); see
:mod:`.fastpath`, which looks entries up inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .findings import Finding, Found

__all__ = ["FAILED", "Failed", "Kept", "Memo", "into", "keep", "recall", "recall_into"]

_T = TypeVar("_T")
_Findings = tuple[tuple[str, tuple[str, ...], str, str | None], ...]
#: a remembered outcome: whether it has an error, and each finding as (message, trail,
#: severity, profile); None when there is none
Kept = tuple[bool, _Findings] | None
#: what is known of one shared object, by the key of the check that found it out
Outcomes = dict[Any, Any]
_UNSEEN = object()


class Failed:
    """What :func:`into` gives for an outcome with an error: the caller's walker then
    reports it."""


FAILED = Failed()


class Memo:
    """The shared objects of the open :meth:`sharing` blocks, with their outcomes."""

    __slots__ = ("_alive", "entries")

    def __init__(self) -> None:
        #: id(object) -> its outcomes so far
        self.entries: dict[int, Outcomes] = {}
        self._alive: dict[int, Any] = {}  # the objects themselves, so that no id is reused

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
                    self._alive[key] = obj
                    self.entries[key] = {}
                    added.append(key)
            return value

        try:
            yield share
        finally:
            for key in added:
                self.entries.pop(key, None)
                self._alive.pop(key, None)


def recall(outcomes: Outcomes, key: Any, check: Callable[..., Found], obj: Any) -> Found:
    """The outcome of the check ``key`` on a shared object: run the first time only.

    ``check(obj, None, True)`` runs the check itself (past any recall at its start).
    """
    kept = outcomes.get(key, _UNSEEN)
    if kept is _UNSEEN:
        kept = outcomes[key] = keep(check(obj, None, True))
    return None if kept is None else _revive(kept[1], ())


def recall_into(
    outcomes: Outcomes, key: Any, check: Callable[..., Found], obj: Any, out: Found, *at: str
) -> Found | Failed:
    """:func:`recall`, its findings added to ``out`` under the path segments ``at``."""
    kept = outcomes.get(key, _UNSEEN)
    if kept is _UNSEEN:
        kept = outcomes[key] = keep(check(obj, None, True))
    return into(kept, out, *at)


def into(kept: Kept, out: Found, *at: str) -> Found | Failed:
    """``out`` with a kept outcome's warnings added under the path segments ``at`` (as
    :func:`.findings.under` and :func:`.findings.add` would); FAILED if it has an error."""
    if kept is None:
        return out
    if kept[0]:
        return FAILED
    if out is None:
        return _revive(kept[1], at)
    out.extend(_revive(kept[1], at))
    return out


def keep(found: Found) -> Kept:
    """An outcome in a form nothing can change (findings collect their paths in place)."""
    if not found:
        return None
    errors = any(f.severity == "error" for f in found)
    return errors, tuple((f.message, tuple(f.trail), f.severity, f.profile) for f in found)


def _revive(kept: _Findings, at: tuple[str, ...]) -> list[Finding]:
    """Fresh findings from kept ones, under the path segments ``at``; made without
    ``Finding.__init__``, whose defaults would all be replaced (the same warnings are
    revived in every Variant)."""
    revived = []
    for message, trail, severity, profile in kept:
        f = _new(Finding)
        f.message, f.trail, f.severity, f.profile = message, [*trail, *at], severity, profile
        revived.append(f)
    return revived


_new = object.__new__


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``value``, itself included."""
    if type(value) is dict:
        yield value
        for child in value.values():
            yield from _objects(child)
    elif type(value) is list:
        for child in value:
            yield from _objects(child)
