"""fixed[x] and pattern[x] values, compiled to predicates.

Nearly every pattern in the IG is a CodeableConcept with one coding, a Coding, or a string;
those get a direct comparison instead of the general recursive containment test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Predicate", "contains", "pattern_predicate"]

Predicate = Callable[[Any], bool]


def contains(instance: Any, pattern: Any) -> bool:
    """FHIR pattern semantics: everything in ``pattern`` is in ``instance``."""
    if type(pattern) is dict:
        return type(instance) is dict and all(
            contains(instance.get(k), v) for k, v in pattern.items()
        )
    if type(pattern) is list:
        return type(instance) is list and all(
            any(contains(i, p) for i in instance) for p in pattern
        )
    return bool(instance == pattern)


def pattern_predicate(pattern: Any) -> Predicate:
    """A fast test for ``contains(value, pattern)``."""
    coding = _system_code(pattern)
    if coding is not None:
        return _coding_is(*coding)
    if type(pattern) is dict and list(pattern) == ["coding"] and len(pattern["coding"]) == 1:
        inner = _system_code(pattern["coding"][0])
        if inner is not None:
            return _concept_has(*inner)
    if type(pattern) is str:
        return pattern.__eq__
    return lambda value: contains(value, pattern)


def _system_code(value: Any) -> tuple[str, str] | None:
    if type(value) is dict and set(value) == {"system", "code"}:
        return value["system"], value["code"]
    return None


def _coding_is(system: str, code: str) -> Predicate:
    def test(value: Any) -> bool:
        return type(value) is dict and value.get("code") == code and value.get("system") == system

    return test


def _concept_has(system: str, code: str) -> Predicate:
    def test(value: Any) -> bool:
        codings = value.get("coding") if type(value) is dict else None
        if type(codings) is not list:
            return False
        for c in codings:
            if type(c) is dict and c.get("code") == code and c.get("system") == system:
                return True
        return False

    return test
