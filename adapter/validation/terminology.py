"""Bindings: ValueSets expanded offline from the loaded packages, compiled to set lookups.

A ValueSet is expanded from a stored ``expansion`` or from ``compose``: concept lists, whole
CodeSystems that ship complete in the packages, and nested ValueSets. What cannot be
enumerated offline (a code system that is not loaded or ships as a fragment, a filter) is
kept as an *open* system: a code from it can be neither accepted nor rejected, so a
required binding says "not checkable" (a warning) instead of guessing. Four such systems
(MIME types, language tags, ISO 4217 currencies, HGVS) are checked by their syntax alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .definitions import Definitions, unversioned

__all__ = ["BindingCheck", "Expansion", "Terminology"]

#: value -> (severity, message) or None
BindingCheck = Callable[[Any], "tuple[str, str] | None"]

#: code systems checked by syntax only: MIME types, language tags, currencies, and HGVS
#: expressions (reference sequence, optional version and gene, coordinate type, change)
_GRAMMARS = {
    "urn:iso:std:iso:4217": re.compile(r"[A-Z]{3}"),
    "urn:ietf:bcp:13": re.compile(r"[\w.+-]+/[\w.+-]+(\s*;\s*[\w.+-]+=\S+)*"),
    "urn:ietf:bcp:47": re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*"),
    "http://varnomen.hgvs.org": re.compile(
        r"[A-Za-z][A-Za-z0-9_]*(\.\d+)?(\([^()\s]+\))?:[cgmnopr]\.\S+"
    ),
}
_CODE_TYPES = frozenset({"code", "string", "uri"})


@dataclass(frozen=True, slots=True)
class Expansion:
    """What is known of a ValueSet's members."""

    pairs: frozenset[tuple[str, str]]  # (system, code)
    codes: frozenset[str]
    open_systems: frozenset[str]  # included, but their codes are not known here
    unknown: bool = False  # some part could not be expanded at all

    def decide_coding(self, system: object, code: object) -> bool | None:
        """True/False for membership of (system, code); None when it cannot be known."""
        if type(system) is not str or type(code) is not str:
            return False
        if (system, code) in self.pairs:
            return True
        if system in self.open_systems:
            grammar = _GRAMMARS.get(system)
            if grammar is None:
                return None
            return grammar.fullmatch(code) is not None
        return None if self.unknown else False

    def decide_code(self, code: object) -> bool | None:
        """Membership of a bare code (a ``code`` element carries no system)."""
        if code in self.codes:
            return True
        for system in self.open_systems:
            grammar = _GRAMMARS.get(system)
            if grammar is None:
                return None
            if isinstance(code, str) and grammar.fullmatch(code):
                return True
        return None if self.unknown else False


_UNKNOWN = Expansion(frozenset(), frozenset(), frozenset(), unknown=True)


class Terminology:
    """ValueSet expansion and binding checks over the loaded packages."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        self._expansions: dict[str, Expansion | None] = {}

    def expansion(self, url: str) -> Expansion | None:
        """The members of ValueSet ``url``, or None when the ValueSet is not loaded."""
        key = unversioned(url)
        if key not in self._expansions:
            self._expansions[key] = _UNKNOWN  # a cycle stays unknown instead of recursing
            vs = self._definitions.get("ValueSet", key)
            self._expansions[key] = None if vs is None else self._expand(vs)
        return self._expansions[key]

    def binding(self, strength: str, url: str | None, type_code: str) -> BindingCheck | None:
        """A check for a ``required`` or ``extensible`` binding on an element of this type."""
        if strength not in ("required", "extensible") or not url:
            return None
        required = strength == "required"
        expansion = self.expansion(url)
        if expansion is None:
            return _not_checkable(url) if required else None
        if type_code in _CODE_TYPES:
            return _code_binding(expansion, url, required)
        if type_code == "Coding":
            return _coding_binding(expansion, url, required)
        if type_code == "CodeableConcept":
            return _concept_binding(expansion, url, required)
        return None

    def _expand(self, vs: dict[str, Any]) -> Expansion:
        stored = vs.get("expansion")
        if isinstance(stored, dict) and "contains" in stored:
            pairs = frozenset(_contains(stored["contains"]))
            return Expansion(pairs, frozenset(c for _, c in pairs), frozenset())
        compose = vs.get("compose") or {}
        parts = [self._include(inc) for inc in compose.get("include", [])]
        result = _union(parts) if parts else _UNKNOWN
        for exc in compose.get("exclude", []):
            result = _exclude(result, exc)
        return result

    def _include(self, inc: dict[str, Any]) -> Expansion:
        system = inc.get("system")
        nested = [self.expansion(u) for u in inc.get("valueSet", [])]
        if nested and system is None:
            return _union([e if e is not None else _UNKNOWN for e in nested])
        if not isinstance(system, str) or nested:
            return _UNKNOWN  # an intersection with ValueSets: not worth expanding
        if "concept" in inc:
            pairs = frozenset((system, c["code"]) for c in inc["concept"])
            return Expansion(pairs, frozenset(c for _, c in pairs), frozenset())
        if "filter" in inc:
            return Expansion(frozenset(), frozenset(), frozenset({system}))
        return self._whole_system(system)

    def _whole_system(self, system: str) -> Expansion:
        cs = self._definitions.get("CodeSystem", system)
        if cs is None or cs.get("content") != "complete":
            return Expansion(frozenset(), frozenset(), frozenset({system}))
        codes = frozenset(_concept_codes(cs.get("concept", [])))
        return Expansion(frozenset((system, c) for c in codes), codes, frozenset())


def _contains(items: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str]]:
    for item in items:
        if "code" in item and "system" in item:
            yield item["system"], item["code"]
        yield from _contains(item.get("contains", []))


def _concept_codes(concepts: Iterable[dict[str, Any]]) -> Iterator[str]:
    for concept in concepts:
        yield concept["code"]
        yield from _concept_codes(concept.get("concept", []))


def _union(parts: list[Expansion]) -> Expansion:
    return Expansion(
        frozenset().union(*(p.pairs for p in parts)),
        frozenset().union(*(p.codes for p in parts)),
        frozenset().union(*(p.open_systems for p in parts)),
        any(p.unknown for p in parts),
    )


def _exclude(result: Expansion, exc: dict[str, Any]) -> Expansion:
    system = exc.get("system")
    if "concept" not in exc or not isinstance(system, str):
        return _UNKNOWN  # excluding a filter or a whole system: membership becomes unsure
    gone = {(system, c["code"]) for c in exc["concept"]}
    pairs = result.pairs - gone
    codes = frozenset(c for _, c in pairs)
    return Expansion(pairs, codes, result.open_systems, result.unknown)


def _not_checkable(url: str) -> BindingCheck:
    message = f"binding not checkable: required value set {url} is not available offline"
    return lambda _value: ("warning", message)


def _verdict(decided: bool | None, what: str, url: str, required: bool) -> tuple[str, str] | None:
    if decided:
        return None
    strength = "required" if required else "extensible"
    if decided is None:
        if not required:
            return None
        return "warning", f"binding not checkable: cannot decide if {what} is in {url} offline"
    return ("error" if required else "warning"), f"{what} is not in {strength} value set {url}"


def _code_binding(expansion: Expansion, url: str, required: bool) -> BindingCheck:
    codes = expansion.codes

    def check(value: Any) -> tuple[str, str] | None:
        if value in codes:
            return None
        return _verdict(expansion.decide_code(value), f"code {value!r}", url, required)

    return check


def _coding_binding(expansion: Expansion, url: str, required: bool) -> BindingCheck:
    def check(value: Any) -> tuple[str, str] | None:
        system, code = value.get("system"), value.get("code")
        decided = expansion.decide_coding(system, code)
        return _verdict(decided, f"code {system}#{code}", url, required)

    return check


def _concept_binding(expansion: Expansion, url: str, required: bool) -> BindingCheck:
    """At least one coding must be in the value set (extensible: or none, with text)."""
    unsure: dict[str, tuple[str, str]] = {}  # system -> the warning, built once

    def not_checkable(system: str) -> tuple[str, str]:
        if system not in unsure:
            unsure[system] = (
                "warning",
                f"binding not checkable: codes of {system} in required value set {url} "
                "cannot be checked offline",
            )
        return unsure[system]

    def check(value: Any) -> tuple[str, str] | None:
        codings = value.get("coding")
        if type(codings) is not list or not codings:
            if not required:
                return None  # extensible: text alone is allowed
            return "error", f"no coding given, but one from required value set {url} is"
        undecided = None
        for c in codings:
            if type(c) is dict:
                system = c.get("system")
                decided = expansion.decide_coding(system, c.get("code"))
                if decided:
                    return None
                if decided is None:
                    undecided = system
        if undecided is not None:
            return not_checkable(undecided) if required else None
        shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings if type(c) is dict)
        strength = "required" if required else "extensible"
        severity = "error" if required else "warning"
        return severity, f"the concept ({shown}) is not in {strength} value set {url}"

    return check
