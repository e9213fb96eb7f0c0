"""Code systems, profiles, FHIR date formats and the code tables in ``mappings/``.

The tables are read once per process. Every accessor returns fresh dicts, so a builder may
keep and share what it gets without another builder's changes reaching it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

from ..resources import mapping_rows

__all__ = [
    "DBSNP",
    "ENSEMBL",
    "HGNC",
    "HGVS",
    "REFSEQ",
    "SECURITY_LABELS",
    "SPDI",
    "UCUM",
    "Slice",
    "coding",
    "concept",
    "effective_time",
    "instant",
    "profile",
    "slices",
]

REFSEQ = "http://www.ncbi.nlm.nih.gov/refseq"
HGVS = "http://varnomen.hgvs.org"
#: dbSNP rsIDs: the HL7 Terminology URI, as in the IG's examples
DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
#: SPDI expressions: NCBI Variation Services, the URI the IG authors' vcf2fhir uses
SPDI = "https://api.ncbi.nlm.nih.gov/variation/v0/"
HGNC = "http://www.genenames.org"
#: Ensembl transcripts (ENST…): HL7 Terminology's URI for Ensembl
ENSEMBL = "http://www.ensembl.org"
UCUM = "http://unitsofmeasure.org"
#: every genomic resource's meta.security: confidentiality R and sensitivity GDIS, the HCS labels
#: of the R4 security-labels binding (codes and displays of CodeSystem-v3-Confidentiality and
#: CodeSystem-v3-ActCode in the R4 core package 4.0.1); adapter.policy.labels adds its own
SECURITY_LABELS: Final = (
    {
        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "code": "R",
        "display": "restricted",
    },
    {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "GDIS",
        "display": "genetic disease information sensitivity",
    },
)
_IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"


def profile(name: str) -> str:
    """Canonical URL of a Genomics Reporting IG profile or extension."""
    return _IG + name


@dataclass(frozen=True, slots=True)
class Slice:
    """A Variant component slice: its fixed code and the JSON key of its value."""

    name: str
    system: str
    code: str
    display: str
    value_key: str  # e.g. "valueCodeableConcept"

    def concept(self) -> dict[str, Any]:
        """The slice's component.code."""
        return {"coding": [{"system": self.system, "code": self.code, "display": self.display}]}


def _value_key(value_type: str) -> str:
    """The JSON key of value[x] for a FHIR type: ``string`` → ``valueString``."""
    return "value" + value_type[:1].upper() + value_type[1:]


@cache
def slices() -> dict[str, Slice]:
    """The component slices of ``mappings/loinc_components.csv``, by slice name."""
    return {
        r["slice"]: Slice(
            r["slice"], r["system"], r["code"], r["display"], _value_key(r["value_type"])
        )
        for r in mapping_rows("loinc_components.csv")
    }


@cache
def _answers() -> dict[tuple[str, str], tuple[str, str, str]]:
    """``mappings/answer_codes.csv`` as (group, key) → (system, code, display)."""
    return {
        (r["group"], r["key"]): (r["system"], r["code"], r["display"])
        for r in mapping_rows("answer_codes.csv")
    }


def coding(group: str, key: str) -> dict[str, str] | None:
    """The Coding for ``key`` in ``group``, or None when the table has no code for it."""
    found = _answers().get((group, key))
    if found is None:
        return None
    system, code, display = found
    if not display:  # the source gives none: better none than a guessed one
        return {"system": system, "code": code}
    return {"system": system, "code": code, "display": display}


def concept(group: str, key: str) -> dict[str, Any]:
    """A CodeableConcept for ``key``; text only when the table has no code for it."""
    found = coding(group, key)
    return {"coding": [found]} if found else {"text": str(key)}


def instant(moment: datetime | None) -> str | None:
    """A FHIR instant; a naive time is taken as UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def effective_time(file_date: str | None, issued: datetime | None) -> str | None:
    """When the result was obtained: the VCF's ##fileDate as a FHIR date, else ``issued``."""
    for fmt in ("%Y%m%d", "%Y-%m-%d"):
        try:
            return datetime.strptime(file_date or "", fmt).date().isoformat()
        except ValueError:
            continue
    return instant(issued)
