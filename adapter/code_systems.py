"""The code systems lab reports name (HL7 v2 coding system names, CURIE prefixes), as FHIR
system URIs: ``mappings/code_systems.csv``, with the source of each URI beside it.

Readers use it to turn a report's codes into :class:`~adapter.model.CodedTerm`; the HL7 v2
writer to turn them back. A name the table lacks is no error: the term keeps its text.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final, NamedTuple

from .model import CodedTerm
from .resources import mapping_rows

__all__ = ["CodeSystem", "by_curie", "by_system", "by_v2_name", "curie_term"]


class CodeSystem(NamedTuple):
    """One row of the table."""

    curie: str | None  # e.g. "HP"
    v2_name: str | None  # e.g. "HPO"
    system: str  # e.g. "http://human-phenotype-ontology.org"


@cache
def _table() -> tuple[CodeSystem, ...]:
    rows = mapping_rows("code_systems.csv")
    return tuple(CodeSystem(r["curie"] or None, r["hl7v2"] or None, r["system"]) for r in rows)


def by_curie(prefix: str) -> CodeSystem | None:
    """The system a CURIE prefix names (case as written: ``HP``, ``MONDO``)."""
    return next((s for s in _table() if s.curie == prefix), None)


def by_v2_name(name: str) -> CodeSystem | None:
    """The system an HL7 v2 coding system name (CWE-3) names, e.g. ``LN``; an HL7 table
    (``HL70487``) is the HL7 Terminology CodeSystem of that table."""
    if _HL7_TABLE(name):
        return CodeSystem(None, name, f"http://terminology.hl7.org/CodeSystem/v2-{name[3:]}")
    return next((s for s in _table() if s.v2_name == name), None)


def by_system(uri: str) -> CodeSystem | None:
    """The row of a FHIR system URI, for writing it back out."""
    prefix = "http://terminology.hl7.org/CodeSystem/v2-"
    if uri.startswith(prefix) and _HL7_TABLE(f"HL7{uri.removeprefix(prefix)}"):
        return CodeSystem(None, f"HL7{uri.removeprefix(prefix)}", uri)
    return next((s for s in _table() if s.system == uri), None)


def curie_term(curie: str, label: str | None = None) -> CodedTerm:
    """``HP:0001250`` as a term: coded in its system (the code as the system writes it,
    which for HPO, MONDO, HGNC and ORPHA keeps the prefix, for OMIM drops it), else text only."""
    prefix, sep, local = curie.partition(":")
    found = by_curie(prefix) if sep else None
    if found is None:
        return CodedTerm(None, None, label or curie)
    code = local if prefix in _BARE else curie
    return CodedTerm(found.system, code, label)


#: an HL7 v2 table's name as CWE-3 writes it
_HL7_TABLE: Final = re.compile(r"HL7[0-9]{4}").fullmatch
#: systems whose codes are written without the CURIE prefix
_BARE = frozenset({"OMIM", "ClinVar", "dbSNP", "COSMIC"})
