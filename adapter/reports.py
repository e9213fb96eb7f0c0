"""One lab report, end to end: :class:`~adapter.model.LabReport` (read from an HL7 v2
ORU^R01 message or a GA4GH Phenopacket) → FHIR resources → output.

The report's resources are few, so they are built whole (:mod:`adapter.fhir.lab_report`) and
then decided on as a Bundle by :func:`adapter.decision.decide_bundle`: the same rules as a
VCF conversion (the report's decision, ACMG secondary findings held unless disclosed, labels,
Provenance of each disclosure, an AuditEvent per decision), one implementation. A deny
writes nothing. Validation and the writers are those of :mod:`adapter.convert`; nothing
reaches the destination unless the whole conversion succeeded.

A de-identified (research) output is a VCF conversion's alone: a report carries its order
numbers and notes as written, which pseudonymisation would have to understand first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .assembly import accession
from .conformance import checker
from .convert import OutputFormat
from .decision import decide_bundle
from .disclosure import Disclosure, refusal
from .errors import GenomeBuildError, OptionsError
from .fhir.lab_report import lab_report_resources
from .fhir.writers import labelled, open_writer
from .model import AnalysisContext, ConversionSummary, GenomeBuild, LabReport
from .validation import load_validator

__all__ = ["ReportOptions", "convert_report", "report_context"]


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """What a user can say about one report's conversion."""

    output_format: OutputFormat = OutputFormat.TRANSACTION
    validate: bool = False
    #: the disclosure request the output answers; None: no policy, for the lab's own use
    disclosure: Disclosure | None = None
    input_name: str = "report"  # the message's or file's name, no directories


def convert_report(
    report: LabReport, destination: Path, options: ReportOptions
) -> ConversionSummary:
    """Convert ``report`` into ``destination`` (a Bundle file, or an NDJSON folder)."""
    ctx = report_context(report, options.input_name)
    resources = lab_report_resources(report, ctx, accession)
    if options.disclosure is not None:
        resources = _disclosed(resources, report, options.disclosure)
    summary = ConversionSummary(records_read=len(report.variants))
    check = checker(load_validator(), summary) if options.validate else None
    with open_writer(options.output_format.value, destination, ctx) as writer:
        for resource in resources:
            if check is not None:
                check(resource)
            writer.add(resource)
        summary.resources_written = writer.counts()
    summary.variants_converted = sum(1 for r in resources if _is_variant(r))
    return summary


def report_context(report: LabReport, input_name: str) -> AnalysisContext:
    """The conversion's context: the report's patient, build, key, times and specimen. A
    report that places variants on coordinates must say on which build."""
    placed = any(v.call is not None for v in report.variants)
    if placed and report.build is None:
        raise GenomeBuildError(
            "the report gives variant coordinates but no genome build: state the reference "
            "assembly (LOINC 62374-4 in HL7 v2, vcf_record.genome_assembly in a Phenopacket)",
            source=input_name,
        )
    return AnalysisContext(
        patient=report.patient,
        build=report.build or GenomeBuild.GRCH38,  # read only where variants are placed
        sample="",
        source_class=report.source_class,
        sex=report.sex,
        issued=report.issued,
        input_name=input_name,
        report_key=report.report_key,
        specimen_identifier=report.specimen,
        order_identifier=report.placer_order,
    )


def _disclosed(
    resources: list[dict[str, Any]], report: LabReport, disclosure: Disclosure
) -> list[dict[str, Any]]:
    """What the policy discloses of the report's resources, with its Provenances; a deny
    raises. The patient's birth date, when the request lacks one, is the report's."""
    research = disclosure.request.purpose in disclosure.policy.research
    if research:
        raise OptionsError(
            "a research disclosure is de-identified, which only VCF conversions support",
            field="purpose",
        )
    if disclosure.request.birth_date is None and report.birth_date is not None:
        request = replace(disclosure.request, birth_date=report.birth_date)
        disclosure = replace(disclosure, request=request)
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": labelled(r)} for r in resources]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    decided = decide_bundle(bundle, disclosure, sex=report.sex)
    if decided.bundle is None:
        raise refusal(decided.decision)
    return [entry["resource"] for entry in decided.bundle["entry"]]


def _is_variant(resource: dict[str, Any]) -> bool:
    profiles = resource.get("meta", {}).get("profile", [])
    return resource["resourceType"] == "Observation" and any(
        p.endswith("/variant") for p in profiles
    )
