"""Security labels (``meta.security``) on the genomic resources the adapter emits.

Policy decided here:

* **Every genomic resource** is labelled confidentiality ``R`` "restricted" (v3
  Confidentiality) and sensitivity ``GDIS`` "genetic disease information sensitivity" (v3
  ActCode, an ``_InformationSensitivityPolicy``), the Healthcare Privacy and Security
  Classification System labels of the R4 ``security-labels`` binding
  (https://hl7.org/fhir/R4/security-labels.html, https://hl7.org/fhir/R4/resource.html#Meta).
  Codes and displays as in CodeSystem-v3-Confidentiality and CodeSystem-v3-ActCode
  (2018-08-12) of the R4 core package 4.0.1.
* **A secondary finding** also carries the adapter's ``secondary-finding`` label
  (profiles/CodeSystem-genomic-disclosure.json), so access control can tell it from the
  results the order asked for.
* **The labels are recomputed, never accumulated.** This module owns its three labels (by
  system and code); :func:`labelled` replaces those and keeps every other label where it
  was (a server's, the de-identifier's), then appends its own in a fixed order: R, GDIS,
  secondary-finding. Applying it again, or after a policy or consent change turned a
  secondary finding primary, gives the current set with no duplicates.
* **Inputs are not changed.** The result is a new resource dict with a new ``meta``; its other
  elements are shared with the input, so neither may be changed in place afterwards.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from ..fhir.codes import SECURITY_LABELS
from .consent import Coding
from .engine import LABEL_SECONDARY_FINDING, Item

__all__ = [
    "ACT_CODE",
    "CONFIDENTIALITY",
    "GENOMIC_LABELS",
    "LABEL_GENETIC_DISEASE",
    "LABEL_RESTRICTED",
    "LABEL_SECONDARY_FINDING",
    "coding_json",
    "labelled",
    "labels_of",
    "relabelled",
]

#: R and GDIS, as the writers put them on every resource (adapter.fhir.codes.SECURITY_LABELS)
LABEL_RESTRICTED, LABEL_GENETIC_DISEASE = (
    Coding(c["system"], c["code"], c["display"]) for c in SECURITY_LABELS
)
CONFIDENTIALITY: Final = LABEL_RESTRICTED.system
ACT_CODE: Final = LABEL_GENETIC_DISEASE.system
#: what every genomic resource carries, in order
GENOMIC_LABELS: Final = (LABEL_RESTRICTED, LABEL_GENETIC_DISEASE)
_OWNED: Final = frozenset({*GENOMIC_LABELS, LABEL_SECONDARY_FINDING})


def labels_of(item: Item) -> tuple[Coding, ...]:
    """The labels a result gets: the genomic ones, and secondary-finding when it is one."""
    if item.secondary is None:
        return GENOMIC_LABELS
    return (*GENOMIC_LABELS, LABEL_SECONDARY_FINDING)


def labelled(resource: Mapping[str, Any], item: Item) -> dict[str, Any]:
    """``resource`` with the labels of ``item`` in place of this module's earlier ones."""
    return relabelled(resource, labels_of(item), _OWNED)


def relabelled(
    resource: Mapping[str, Any], labels: Sequence[Coding], owned: Collection[Coding]
) -> dict[str, Any]:
    """``resource`` with ``labels`` appended to ``meta.security`` after its labels that are
    not among ``owned`` (matched by system and code), which keep their order."""
    meta: Mapping[str, Any] = resource.get("meta") or {}
    kept = [
        c for c in meta.get("security") or () if Coding(c.get("system"), c.get("code")) not in owned
    ]
    security = kept + [coding_json(label) for label in labels]
    return _with_meta(resource, {**meta, "security": security})


def coding_json(coding: Coding) -> dict[str, str]:
    """A fresh FHIR Coding of ``coding``, for a builder to keep or change."""
    found = {"system": coding.system, "code": coding.code}
    if coding.display is not None:
        found["display"] = coding.display
    return found


def _with_meta(resource: Mapping[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``resource`` with ``meta``: in its place, else after ``resourceType`` and ``id``
    where FHIR's JSON examples put it."""
    if "meta" in resource:
        return {**resource, "meta": meta}
    head = {k: resource[k] for k in ("resourceType", "id") if k in resource}
    return {**head, "meta": meta, **resource}
