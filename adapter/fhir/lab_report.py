"""The resources of a lab report (an HL7 v2 ORU^R01 message or a GA4GH Phenopacket read into
:class:`~adapter.model.LabReport`): the same IG profiles a VCF conversion makes.

* One **Variant** per :class:`~adapter.model.ReportedVariant`
  (:meth:`~adapter.fhir.variant.VariantBuilder.reported`), its id derived from the report's
  key and the variant's, so a corrected report (same filler order number, same variants)
  updates the resources of the original instead of adding to them.
* Its **diagnostic-implication** when the report classifies it, the report cited as the
  source that decided; a **therapeutic-implication** when the report calls it actionable.
* Each **phenotypic feature** as an Observation coded with its term (HPO) and valued Present
  or, when looked for and not found, Absent (LOINC LL1971-2), as the HL7 Phenomics Exchange
  IG's phenotype examples are (https://github.com/HL7/phenomics-exchange-ig); the report
  lists them as supporting information (extension workflow-supportingInfo), not as results.
* The **genomic-report** DiagnosticReport: the report's status, the filler order number as a
  business identifier (HL7 v2-0203 FILL), the placer order as the ServiceRequest it is
  ``basedOn``, the specimen by its identifier, the collection and issue times, the lab's own
  conclusion, the diagnoses as ``conclusionCode``, and its notes as coded notes
  (extension genomic-report-note).

http://hl7.org/fhir/uv/genomics-reporting/STU3/
"""

from __future__ import annotations

from typing import Any, Final

from ..model import AnalysisContext, CodedTerm, LabReport, VariantAssessment
from .codes import concept, instant, profile
from .identifiers import (
    IdFactory,
    identifier,
    internal,
    observed,
    patient_reference,
    specimen_reference,
)
from .implication import Implications, term_concept
from .variant import AccessionLookup, VariantBuilder

__all__ = ["lab_report_resources"]

_IDENTIFIER_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
_SUPPORTING: Final = "http://hl7.org/fhir/StructureDefinition/workflow-supportingInfo"


def lab_report_resources(
    report: LabReport, ctx: AnalysisContext, accession: AccessionLookup
) -> list[dict[str, Any]]:
    """Every resource of ``report``, results first and the DiagnosticReport last; ``ctx`` is
    the conversion's (its patient, build, key and times are the report's)."""
    ids = IdFactory(ctx)
    builder = VariantBuilder(ctx, accession)
    implications = Implications(ctx)
    source = _source_label(report)
    results: list[dict[str, Any]] = []
    for variant in report.variants:
        rid = ids.resource(f"variant|{variant.key}")
        results.append(builder.reported(variant, rid, report.status))
        if variant.classification is not None:
            results.append(implications.reported(rid, variant.classification, source))
        if variant.actionable:
            results.append(implications.actionable(rid, variant.therapies, report.diagnoses))
    features = [_phenotype(ids, ctx, t, present=True) for t in report.phenotypes]
    features += [_phenotype(ids, ctx, t, present=False) for t in report.excluded_phenotypes]
    if (collected := instant(report.collected)) is not None:
        for observation in (*results, *features):  # each a dict of its own at the top
            observation["effectiveDateTime"] = collected
    return [*results, *features, _report(report, ctx, ids, results, features)]


def _source_label(report: LabReport) -> str:
    """How a classification cites the report that decided it."""
    lab = f" from {report.performer}" if report.performer else ""
    return f"{report.source_format}{lab}"


def _phenotype(
    ids: IdFactory, ctx: AnalysisContext, term: CodedTerm, *, present: bool
) -> dict[str, Any]:
    """A phenotypic feature: its term as the code, Present or Absent as the value."""
    rid = ids.resource(f"phenotype|{term.system}|{term.code}|{term.display}")
    assessment = VariantAssessment.PRESENT if present else VariantAssessment.ABSENT
    return {
        "resourceType": "Observation",
        "id": rid,
        "identifier": [identifier(rid)],
        "status": "final",
        "category": [concept("category", "exam")],
        "code": term_concept(term),
        **observed(ctx),
        "valueCodeableConcept": concept("variant-value", assessment),
    }


def _report(
    report: LabReport,
    ctx: AnalysisContext,
    ids: IdFactory,
    results: list[dict[str, Any]],
    features: list[dict[str, Any]],
) -> dict[str, Any]:
    """The genomic-report DiagnosticReport."""
    rid = ids.resource("report")
    extensions = [
        {"url": _SUPPORTING, "valueReference": internal("Observation", f["id"])} for f in features
    ]
    extensions += [
        {"url": profile("genomic-report-note"), "valueAnnotation": {"text": note}}
        for note in report.notes
    ]
    found: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": rid,
        "meta": {"profile": [profile("genomic-report")]},
        "extension": extensions or None,
        "identifier": [identifier(rid), *_order_identifier(report)],
        "basedOn": [_order(report.placer_order)] if report.placer_order else None,
        "status": report.status.value,
        "category": [concept("category", "genetics")],
        "code": _code(report.code),
        "subject": patient_reference(ctx.patient),
        "effectiveDateTime": instant(report.collected),
        "issued": instant(report.issued),
        "performer": [{"display": report.performer}] if report.performer else None,
        "specimen": [s] if (s := specimen_reference(ctx)) else None,
        "result": [internal("Observation", r["id"]) for r in results] or None,
        "conclusion": report.conclusion,
        "conclusionCode": [term_concept(d) for d in report.diagnoses] or None,
    }
    return {k: v for k, v in found.items() if v is not None}


def _code(test: CodedTerm | None) -> dict[str, Any]:
    """The profile's code (LOINC 51969-4), with the test the lab names (OBR-4) beside it."""
    code = concept("resource-code", "report")
    named = term_concept(test) if test is not None else {}
    extra = [c for c in named.get("coding", []) if c["code"] != code["coding"][0]["code"]]
    return {"coding": [*code["coding"], *extra]}


def _order_identifier(report: LabReport) -> list[dict[str, Any]]:
    """The filler order number, typed FILL, as a business identifier of the report."""
    if report.filler_order is None:
        return []
    system, value = report.filler_order
    kind = {"coding": [{"system": _IDENTIFIER_TYPE, "code": "FILL"}]}
    return [{"type": kind, "system": system, "value": value}]


def _order(placer: tuple[str, str]) -> dict[str, Any]:
    """The ServiceRequest the report answers, by its placer order number."""
    system, value = placer
    kind = {"coding": [{"system": _IDENTIFIER_TYPE, "code": "PLAC"}]}
    placed = {"type": kind, "system": system, "value": value}
    return {"type": "ServiceRequest", "identifier": placed}
