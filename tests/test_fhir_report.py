"""Report, study, analysis and data-file resources."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from test_fhir_variant import coded, context, parse

from adapter.fhir.report import ReportBuilder
from adapter.model import AnalysisContext, GenomicRegion, GenomicSourceClass, PatientRef

IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
RESULTS = [{"reference": "urn:uuid:00000000-0000-5000-8000-000000000001"}]
SHA256 = "a" * 64


def full_context(**changes: Any) -> AnalysisContext:
    """A context with every optional fact, data files included."""
    base = {
        "include_document_reference": True,
        "regions_studied": [GenomicRegion("chr1", 100, 200), GenomicRegion("chr2", 0, 50)],
        "regions_studied_name": "panel.bed",
        "uncallable_regions": [GenomicRegion("chr1", 150, 160)],
        "uncallable_regions_name": "lowcov.bed",
        "specimen_id": "s1",
        "order_identifier": ("http://lab/orders", "O-1"),
        "performer": "Organization/lab",
        "input_sha256": SHA256,
        "input_size": 1234,
        "caller": "GATK HaplotypeCaller",
        "file_date": "20240215",
    }
    return context(**{**base, **changes})


def resources(
    ctx: AnalysisContext, results: list[dict[str, str]] = RESULTS
) -> list[dict[str, Any]]:
    built = list(ReportBuilder(ctx).build(results))
    for resource in built:
        parse(resource)
    return built


def extensions(resource: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in resource["extension"] if e["url"] == IG + name]


def by_profile(built: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for resource in built:
        found.setdefault(resource["meta"]["profile"][0].removeprefix(IG), []).append(resource)
    return found


def test_order_and_profiles() -> None:
    built = resources(full_context())
    assert [(r["resourceType"], r["meta"]["profile"][0].removeprefix(IG)) for r in built] == [
        ("DocumentReference", "genomic-data-file"),
        ("DocumentReference", "genomic-data-file"),
        ("DocumentReference", "genomic-data-file"),
        ("Procedure", "genomic-study-analysis"),
        ("Procedure", "genomic-study"),
        ("DiagnosticReport", "genomic-report"),
    ]
    assert [r["resourceType"] for r in resources(context())] == [
        "Procedure", "Procedure", "DiagnosticReport",
    ]  # fmt: skip


def test_internal_references_resolve() -> None:
    built = resources(full_context())
    ids = {(r["resourceType"], r["id"]) for r in built}
    refs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if str(node.get("reference", "")).startswith("urn:uuid:") and "type" in node:
                refs.append((node["type"], node["reference"].removeprefix("urn:uuid:")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk([r for r in built if r["resourceType"] != "DiagnosticReport"])
    walk(built[-1]["extension"])
    assert refs
    assert set(refs) <= ids


def test_report() -> None:
    report = resources(full_context())[-1]
    study = resources(full_context())[-2]
    assert report["status"] == "final"
    assert coded(report["code"]) == ("http://loinc.org", "51969-4")
    assert [coded(c) for c in report["category"]] == [
        ("http://terminology.hl7.org/CodeSystem/v2-0074", "GE")
    ]
    assert extensions(report, "genomic-study-reference")[0]["valueReference"] == {
        "reference": f"urn:uuid:{study['id']}",
        "type": "Procedure",
    }
    assert report["basedOn"] == [
        {"type": "ServiceRequest", "identifier": {"system": "http://lab/orders", "value": "O-1"}}
    ]
    assert report["subject"] == {"reference": "Patient/p1"}
    assert report["specimen"] == [{"reference": "Specimen/s1"}]
    assert report["performer"] == [{"reference": "Organization/lab"}]
    assert (report["effectiveDateTime"], report["issued"]) == (
        "2024-02-15",
        "2024-03-01T12:00:00+00:00",
    )
    assert report["result"] == RESULTS


def test_report_without_variants_has_no_result() -> None:
    assert "result" not in resources(context(), [])[-1]


def test_study_points_at_its_analysis() -> None:
    built = by_profile(resources(full_context()))
    study, analysis = built["genomic-study"][0], built["genomic-study-analysis"][0]
    assert extensions(study, "genomic-study-analysis-ext")[0]["valueReference"] == {
        "reference": f"urn:uuid:{analysis['id']}",
        "type": "Procedure",
    }
    assert (study["status"], study["performedDateTime"]) == ("completed", "2024-02-15")
    assert coded(study["category"]) == (
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "laboratory",
    )
    assert study["basedOn"][0]["identifier"]["value"] == "O-1"


def test_analysis_extensions() -> None:
    built = by_profile(resources(full_context()))
    analysis = built["genomic-study-analysis"][0]
    files = {d["content"][0]["attachment"]["title"]: d["id"] for d in built["genomic-data-file"]}
    method = extensions(analysis, "genomic-study-analysis-method-type")[0]
    assert coded(method["valueCodeableConcept"])[1] == "ngs-mps"
    build = extensions(analysis, "genomic-study-analysis-genome-build")[0]
    assert coded(build["valueCodeableConcept"]) == ("http://loinc.org", "LA26806-2")
    source = extensions(analysis, "genomic-study-analysis-genomic-source-class")[0]
    assert coded(source["valueCodeableConcept"]) == ("http://loinc.org", "LA6683-2")
    focus = extensions(analysis, "genomic-study-analysis-focus")[0]
    assert focus["valueReference"] == {"reference": "Patient/p1"}
    specimen = extensions(analysis, "genomic-study-analysis-specimen")[0]
    assert specimen["valueReference"] == {"reference": "Specimen/s1"}
    regions = extensions(analysis, "genomic-study-analysis-regions")[0]["extension"]
    assert regions == [
        {
            "url": "description",
            "valueString": "studied: panel.bed (2 regions, 150 bp); "
            "uncallable: lowcov.bed (1 regions, 10 bp)",
        },
        {"url": "studied", "valueReference": ref("DocumentReference", files["panel.bed"])},
        {"url": "uncalled", "valueReference": ref("DocumentReference", files["lowcov.bed"])},
    ]
    output = extensions(analysis, "genomic-study-analysis-output")[0]["extension"]
    assert output[0] == {
        "url": "file",
        "valueReference": ref("DocumentReference", files["sample.vcf.gz"]),
    }
    assert coded(output[1]["valueCodeableConcept"])[1] == "vcf"
    assert analysis["performer"] == [{"actor": {"reference": "Organization/lab"}}]
    assert analysis["note"] == [{"text": "Variant caller (VCF ##source): GATK HaplotypeCaller"}]
    assert "code" not in analysis


def ref(resource_type: str, rid: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{rid}", "type": resource_type}


def test_without_document_references_the_vcf_is_named() -> None:
    ctx = full_context(include_document_reference=False)
    analysis = by_profile(resources(ctx))["genomic-study-analysis"][0]
    output = extensions(analysis, "genomic-study-analysis-output")[0]["extension"]
    assert output[0] == {"url": "file", "valueReference": {"display": "sample.vcf.gz"}}
    regions = extensions(analysis, "genomic-study-analysis-regions")[0]["extension"]
    assert [e["url"] for e in regions] == ["description"]


def test_mixed_source_class_is_text() -> None:
    ctx = context(source_class=GenomicSourceClass.MIXED)
    analysis = by_profile(resources(ctx))["genomic-study-analysis"][0]
    source = extensions(analysis, "genomic-study-analysis-genomic-source-class")[0]
    assert source["valueCodeableConcept"] == {"text": "mixed"}


def test_vcf_data_file() -> None:
    docs = by_profile(resources(full_context()))["genomic-data-file"]
    vcf = docs[0]
    report_id = resources(full_context())[-1]["id"]
    assert vcf["status"] == "current"
    assert vcf["content"] == [
        {"attachment": {"contentType": "application/gzip", "title": "sample.vcf.gz", "size": 1234}}
    ]
    digest = base64.urlsafe_b64encode(bytes.fromhex(SHA256)).rstrip(b"=").decode()
    assert vcf["identifier"][1] == {
        "system": "urn:ietf:rfc:3986",
        "value": f"ni:///sha-256;{digest}",
    }
    assert vcf["context"] == {"related": [ref("DiagnosticReport", report_id)]}
    assert vcf["subject"] == {"reference": "Patient/p1"}


def test_huge_vcf_size_is_left_out() -> None:
    vcf = resources(full_context(input_size=2**31, input_name="x.vcf"))[0]
    assert vcf["content"][0]["attachment"] == {"contentType": "text/plain", "title": "x.vcf"}


def test_bed_data_file_embeds_the_regions() -> None:
    bed = by_profile(resources(full_context()))["genomic-data-file"][1]
    attachment = bed["content"][0]["attachment"]
    data = base64.b64decode(attachment["data"])
    assert data == b"chr1\t100\t200\nchr2\t0\t50\n"
    assert attachment["size"] == len(data)
    assert (
        base64.b64decode(attachment["hash"]) == hashlib.sha1(data, usedforsecurity=False).digest()
    )
    assert (attachment["contentType"], attachment["title"]) == ("text/plain", "panel.bed")


def test_patient_by_identifier() -> None:
    ctx = context(patient=PatientRef(identifier_system="http://mrn", identifier_value="7"))
    report = resources(ctx)[-1]
    assert report["subject"] == {
        "type": "Patient",
        "identifier": {"system": "http://mrn", "value": "7"},
    }


def test_rebuilding_gives_identical_resources() -> None:
    assert resources(full_context()) == resources(full_context())
    other = resources(full_context(report_key="another"))
    assert {r["id"] for r in other}.isdisjoint(r["id"] for r in resources(full_context()))
