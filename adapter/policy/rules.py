"""The policy file: the deployment's disclosure rules as data (``mappings/policy.yaml``).

Policy decided here:

* The file is strict. Every key is required, an unknown key is an error, and each rule
  carries its ``source`` (the guideline or spec it follows). A typo could otherwise silently
  permit what the deployment meant to deny.
* Purpose-of-use codes must be codes of HL7 v3 ActReason
  (http://terminology.hl7.org/CodeSystem/v3-ActReason) that this module knows: those a
  disclosure policy speaks of, checked against CodeSystem-v3-ActReason (2018-08-12) of the
  FHIR R4 core package 4.0.1.
* A purpose both permitted without consent and never permitted is a contradiction, and an
  error.
* What becomes of secondary findings already sent when the Consent that permitted them is
  withdrawn (``retract_secondary_findings``): ``keep`` (the shipped choice: the record stays as
  sent) or ``entered-in-error`` (each such resource is marked so on the server, never deleted;
  :mod:`adapter.sync.inbound`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

import yaml

from ..errors import PolicyFileError
from ..resources import data_dir

__all__ = [
    "ACT_REASON",
    "Combining",
    "MinorOnset",
    "MinorRule",
    "NoConsentRule",
    "Policy",
    "Retraction",
    "RetractionRule",
    "default_policy",
    "load_policy",
]

#: the code system of purpose-of-use codes
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#: v3 ActReason codes a policy may name (R4 core 4.0.1, CodeSystem-v3-ActReason, 2018-08-12)
_PURPOSES: Final = frozenset(
    {"TREAT", "ETREAT", "HRESCH", "CLINTRCH", "HMARKT", "HOPERAT", "HPAYMT", "PATRQT"}
    | {"FAMRQT", "PUBHLTH", "CLINTRL", "COVERAGE", "HDIRECT", "BTG"}
)
_AGES: Final = range(1, 26)  # an age of majority outside this is a typo
_E = TypeVar("_E", bound=StrEnum)


class Combining(StrEnum):
    """How the decisions of several Consents in force combine."""

    DENY_OVERRIDES = "deny-overrides"  # any deny wins (XACML 3.0, C.2)
    MOST_RECENT = "most-recent"  # the latest Consent decides


class MinorOnset(StrEnum):
    """What becomes of an adult-onset secondary finding of a minor."""

    WITHHOLD_UNLESS_GUARDIAN_PERMITS = "withhold-unless-guardian-permits"
    WITHHOLD = "withhold"


class Retraction(StrEnum):
    """What becomes of secondary findings sent before their Consent was withdrawn."""

    KEEP = "keep"
    ENTERED_IN_ERROR = "entered-in-error"  # their status on the server (R4 ObservationStatus)


@dataclass(frozen=True, slots=True)
class RetractionRule:
    """The deployment's choice of :class:`Retraction`, with its source."""

    action: Retraction
    source: str


@dataclass(frozen=True, slots=True)
class NoConsentRule:
    """What is disclosed for a patient with no Consent in force."""

    purposes: frozenset[str]
    secondary_findings: bool
    research: bool
    source: str


@dataclass(frozen=True, slots=True)
class MinorRule:
    """Who is a minor, and what their adult-onset secondary findings need."""

    age_of_majority: int
    adult_onset: MinorOnset
    source: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A deployment's disclosure rules, each with its source."""

    no_consent: NoConsentRule
    combining: Combining
    combining_source: str
    minors: MinorRule
    never: frozenset[str]  # purposes nothing is ever disclosed for
    never_source: str
    research: frozenset[str]  # purposes that need a research consent and de-identification
    #: GA4GH DUO codes a research Consent may name in place of the purpose, and their system
    research_duo: frozenset[str]
    duo_system: str
    research_source: str
    purpose_required: bool
    retraction: RetractionRule
    path: str  # the file read


def default_policy() -> Policy:
    """The policy shipped in ``mappings/policy.yaml``."""
    return load_policy(data_dir("mappings") / "policy.yaml")


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the shipped one; read again when the file changes."""
    if path is None:
        return default_policy()
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as e:
        raise PolicyFileError(f"cannot read the policy file: {e.strerror}", source=str(path)) from e
    return _load(path, stat.st_mtime_ns, stat.st_size)


@cache
def _load(path: Path, modified: int, size: int) -> Policy:
    """The file as it was at ``modified`` with ``size`` bytes (the cache's key)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyFileError(f"cannot read the policy file: {e.strerror}", source=str(path)) from e
    except yaml.YAMLError as e:
        raise PolicyFileError(f"not YAML: {e}", source=str(path)) from e
    return _Reader(str(path)).policy(data)


#: when a policy file says nothing of retraction: what was sent stays as it was
_KEEP_SENT: Final = {
    "action": "keep",
    "source": "the adapter's default when the policy file does not say (it predates the key)",
}


class _Reader:
    """Checks each key as it reads it, naming the key's path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def policy(self, data: object) -> Policy:
        sections = {"version", "no_consent", "combine", "minors", "never", "research"}
        # added after version 1 was published: optional, so existing policy files still load
        top = self.mapping(
            data, "", sections | {"purpose_required"}, frozenset({"retract_secondary_findings"})
        )
        if top["version"] != 1:
            raise self.error("version", f"version {top['version']!r} is not 1, the one known")
        combine = self.mapping(top["combine"], "combine", {"strategy", "source"})
        minors = self.mapping(
            top["minors"], "minors", {"age_of_majority", "adult_onset_secondary_findings", "source"}
        )
        never = self.mapping(top["never"], "never", {"purposes", "source"})
        research = self.mapping(
            top["research"], "research", {"purposes", "duo_system", "duo_codes", "source"}
        )
        policy = Policy(
            no_consent=self.no_consent(top["no_consent"]),
            combining=self.choice(combine["strategy"], "combine.strategy", Combining),
            combining_source=self.text(combine["source"], "combine.source"),
            minors=self.minors(minors),
            never=self.purposes(never["purposes"], "never.purposes"),
            never_source=self.text(never["source"], "never.source"),
            research=self.purposes(research["purposes"], "research.purposes"),
            research_duo=self.duo(research["duo_codes"], "research.duo_codes"),
            duo_system=self.text(research["duo_system"], "research.duo_system"),
            research_source=self.text(research["source"], "research.source"),
            purpose_required=self.flag(top["purpose_required"], "purpose_required"),
            retraction=self.retraction(top.get("retract_secondary_findings", _KEEP_SENT)),
            path=self.source,
        )
        if both := policy.no_consent.purposes & policy.never:
            raise self.error(
                "no_consent.purposes",
                f"{', '.join(sorted(both))} is both permitted without consent and never permitted",
            )
        return policy

    def no_consent(self, data: object) -> NoConsentRule:
        keys = {"purposes", "secondary_findings", "research", "source"}
        rule = self.mapping(data, "no_consent", keys)
        return NoConsentRule(
            purposes=self.purposes(rule["purposes"], "no_consent.purposes"),
            secondary_findings=self.flag(
                rule["secondary_findings"], "no_consent.secondary_findings"
            ),
            research=self.flag(rule["research"], "no_consent.research"),
            source=self.text(rule["source"], "no_consent.source"),
        )

    def retraction(self, data: object) -> RetractionRule:
        at = "retract_secondary_findings"
        rule = self.mapping(data, at, {"action", "source"})
        return RetractionRule(
            self.choice(rule["action"], f"{at}.action", Retraction),
            self.text(rule["source"], f"{at}.source"),
        )

    def minors(self, rule: dict[str, Any]) -> MinorRule:
        age = rule["age_of_majority"]
        if not isinstance(age, int) or isinstance(age, bool) or age not in _AGES:
            raise self.error(
                "minors.age_of_majority",
                f"{age!r} is not an age from {_AGES.start} to {_AGES.stop - 1}",
            )
        onset = self.choice(
            rule["adult_onset_secondary_findings"],
            "minors.adult_onset_secondary_findings",
            MinorOnset,
        )
        return MinorRule(age, onset, self.text(rule["source"], "minors.source"))

    def mapping(
        self, data: object, at: str, keys: set[str], optional: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """A mapping holding exactly ``keys``, and perhaps some ``optional`` ones, and no
        other."""
        where = at or "the file"
        if not isinstance(data, Mapping):
            raise self.error(at or None, f"{where} must be a mapping of keys to values")
        if unknown := sorted(set(map(str, data)) - keys - optional):
            known = ", ".join(sorted(keys | optional))
            raise self.error(
                _join(at, unknown[0]), f"unknown key {unknown[0]!r} in {where} (known: {known})"
            )
        if missing := sorted(keys - set(data)):
            raise self.error(_join(at, missing[0]), f"{where} lacks the key {missing[0]!r}")
        return dict(data)

    def purposes(self, value: object, at: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(at, "must be a list of v3 ActReason codes, e.g. [TREAT]")
        if unknown := sorted(set(value) - _PURPOSES):
            raise self.error(at, f"{unknown[0]!r} is not a code of {ACT_REASON}")
        return frozenset(value)

    def duo(self, value: object, at: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and _DUO.fullmatch(v) for v in value
        ):
            raise self.error(at, "must be a list of GA4GH DUO codes, e.g. [DUO:0000042]")
        return frozenset(value)

    def choice(self, value: object, at: str, kind: type[_E]) -> _E:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            return kind(value)
        except ValueError:
            known = ", ".join(m.value for m in kind)
            raise self.error(at, f"{value!r} is not one of: {known}") from None

    def flag(self, value: object, at: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(at, f"{value!r} is not true or false")
        return value

    def text(self, value: object, at: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(at, "must name the rule's source: a guideline, law or spec")
        return " ".join(value.split())

    def error(self, at: str | None, message: str) -> PolicyFileError:
        return PolicyFileError(message, source=self.source, field=at)


_DUO: Final = re.compile(r"DUO:\d{7}")


def _join(at: str, key: str) -> str:
    return f"{at}.{key}" if at else key
