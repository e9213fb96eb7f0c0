"""FHIR primitive types: JSON type and lexical form, with the regexes the core package defines.

Each primitive compiles to one function ``value -> error message | None``. String forms
that passed are remembered (bounded), because the same systems, codes and dates recur in
every resource, and a set lookup is an order of magnitude cheaper than a regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from .definitions import CORE_BASE, Definitions

__all__ = ["MAX_STRING", "MEMO_LIMIT", "MEMO_MAX_LEN", "PrimitiveCheck", "Primitives", "StringForm"]

PrimitiveCheck = Callable[[object], "str | None"]

_REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
_INT_RANGES = {
    "integer": (-(2**31), 2**31 - 1),
    "unsignedInt": (0, 2**31 - 1),
    "positiveInt": (1, 2**31 - 1),
}
MAX_STRING = 1024 * 1024
MEMO_LIMIT = 16384
MEMO_MAX_LEN = 128


class StringForm(NamedTuple):
    """A string type's check in parts, for fast paths to spell out in their own code: a
    value is valid when it is a non-empty ``str`` of at most MAX_STRING characters that
    ``match`` accepts (when there is one); valid values of at most MEMO_MAX_LEN characters
    are remembered in ``seen`` while it holds fewer than MEMO_LIMIT."""

    seen: set[str]
    match: Callable[[str], object] | None


class Primitives:
    """The primitive type checks, built on first use from the core package's definitions."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        self._checks: dict[str, PrimitiveCheck | None] = {}
        self._forms: dict[str, StringForm] = {}

    def get(self, name: str) -> PrimitiveCheck | None:
        """The check for primitive type ``name``, or None if it is not a primitive type."""
        if name not in self._checks:
            self._checks[name] = self._build(name)
        return self._checks[name]

    def form(self, name: str) -> StringForm | None:
        """The parts of the check of ``name``, a string-typed primitive (else None).

        Fast paths test membership in its ``seen`` first, and check the rest on a miss.
        """
        return self._forms.get(name) if self.get(name) is not None else None

    def _build(self, name: str) -> PrimitiveCheck | None:
        sd = self._definitions.structure(CORE_BASE + name)
        if sd is None or sd.get("kind") != "primitive-type":
            return None
        if name == "boolean":
            return _boolean
        if name == "decimal":
            return _decimal
        if name in _INT_RANGES:
            return _integer(name, *_INT_RANGES[name])
        if name == "xhtml":
            return _xhtml
        pattern = _regex(sd)
        match: Callable[[str], object] | None = re.compile(pattern).fullmatch if pattern else None
        if match is not None and name in _DATED:
            match = _calendar(match)
        self._forms[name] = StringForm(set(), match)
        return _string(name, self._forms[name])


def _regex(sd: dict[str, object]) -> str | None:
    """The lexical regex on the primitive's ``value`` element, if the package gives one."""
    snapshot = sd.get("snapshot")
    elements = snapshot.get("element", []) if isinstance(snapshot, dict) else []
    for element in elements:
        if str(element.get("path", "")).endswith(".value"):
            for type_ in element.get("type", []):
                for ext in type_.get("extension", []):
                    if ext.get("url") == _REGEX_EXT:
                        return str(ext["valueString"])
    return None


#: the types whose values start with a date, which must be a day of the calendar
_DATED = frozenset({"date", "dateTime", "instant"})
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _calendar(match: Callable[[str], object]) -> Callable[[str], object]:
    """``match``, and the day a value names exists ("Dates SHALL be valid dates",
    https://hl7.org/fhir/R4/datatypes.html#date): the regex lets 2026-02-30 through."""

    def checked(value: str) -> object:
        found = match(value)
        day = _DAY.match(value) if found is not None else None
        if day is None:
            return found
        year, month, date = (int(part) for part in day.groups())
        return found if date <= _days_in(year, month) else None

    return checked


def _days_in(year: int, month: int) -> int:
    """Days in a month of the proleptic Gregorian calendar (year 0 included)."""
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _boolean(value: object) -> str | None:
    return None if type(value) is bool else f"{_show(value)} is not a boolean (true or false)"


def _decimal(value: object) -> str | None:
    if type(value) is int or type(value) is float:
        return None
    return f"{_show(value)} is not a decimal (a JSON number)"


def _integer(name: str, low: int, high: int) -> PrimitiveCheck:
    def check(value: object) -> str | None:
        if type(value) is not int:
            return f"{_show(value)} is not a {name} (a JSON integer)"
        if not low <= value <= high:
            return f"{value} is out of range for {name} ({low}..{high})"
        return None

    return check


def _xhtml(value: object) -> str | None:
    """Only the shape is checked: the XHTML content rules are not."""
    if type(value) is str and value.lstrip().startswith("<div"):
        return None
    return f"{_show(value)} is not XHTML narrative (a string holding a <div> element)"


def _string(name: str, form: StringForm) -> PrimitiveCheck:
    """A string-typed primitive: non-empty, at most 1 MiB, matching the type's regex."""
    seen, match = form

    def check(value: object) -> str | None:
        if type(value) is not str:
            return f"{_show(value)} is not a {name} (a JSON string)"
        if value in seen:
            return None
        if not value:
            return f"empty string is not a valid {name}"
        if len(value) > MAX_STRING:
            return f"{name} is longer than 1 MiB"
        if match is not None and match(value) is None:
            return f"{_show(value)} is not a valid {name}"
        if len(value) <= MEMO_MAX_LEN and len(seen) < MEMO_LIMIT:
            seen.add(value)
        return None

    return check


def _show(value: object) -> str:
    """A short rendering of a bad value for messages."""
    text = repr(value) if isinstance(value, str) else _json_name(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return "an object" if isinstance(value, dict) else "an array"
