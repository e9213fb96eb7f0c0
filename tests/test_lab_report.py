"""Lab reports to FHIR (adapter.reports, adapter.fhir.lab_report): every example message and
Phenopacket becomes valid IG resources in every output form; a correction updates the
original's resources; the disclosure policy holds secondary findings as for a VCF."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_convert import resources_in

from adapter.convert import OutputFormat
from adapter.disclosure import Disclosure, Indication
from adapter.errors import DisclosureDenied, GenomeBuildError, OptionsError
from adapter.model import LabReport, ReportStatus
from adapter.policy import Request, default_policy
from adapter.readers.hl7v2 import read_oru
from adapter.readers.phenopacket import read_phenopacket
from adapter.reports import ReportOptions, convert_report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
AUTHORITIES = {"HOSP": "https://hospital.example.org/mrn"}
MRN = "https://hospital.test/mrn"
IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
MESSAGES = sorted(p.name for p in (EXAMPLES / "hl7v2").glob("*.hl7"))
PACKETS = sorted(p.name for p in (EXAMPLES / "phenopackets").glob("*.json"))
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def lab_report(name: str) -> LabReport:
    """The first report of an example message, or an example Phenopacket's."""
    if name.endswith(".json"):
        data = (EXAMPLES / "phenopackets" / name).read_bytes()
        return read_phenopacket(data, source=name, subject_system=MRN)
    data = (EXAMPLES / "hl7v2" / name).read_bytes()
    (report, *_) = read_oru(data, source=name, authorities=AUTHORITIES).reports
    return report


def converted(
    report: LabReport, folder: Path, form: OutputFormat = OutputFormat.COLLECTION, **more: Any
) -> list[dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / ("out" if form is OutputFormat.NDJSON else "out.json")
    options = ReportOptions(output_format=form, validate=True, input_name="report", **more)
    convert_report(report, out, options)
    return list(resources_in(out, form))


def of_profile(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in resources if f"{IG}{name}" in r.get("meta", {}).get("profile", [])]


def disclosure(tmp_path: Path, genes: tuple[str, ...] = ()) -> Disclosure:
    request = Request("TREAT", NOW)  # the birth date is the report's
    audit = tmp_path / "audit.ndjson"
    return Disclosure(request, default_policy(), (), Indication.parse(genes), audit)


@pytest.mark.parametrize("form", list(OutputFormat))
@pytest.mark.parametrize("name", MESSAGES + PACKETS)
def test_every_example_report_becomes_valid_ig_resources(
    name: str, form: OutputFormat, tmp_path: Path
) -> None:
    """Validated while converting (a failure raises); the report's variants, its status and
    its patient are all there."""
    report = lab_report(name)
    resources = converted(report, tmp_path, form)
    (diagnostic,) = of_profile(resources, "genomic-report")
    assert len(of_profile(resources, "variant")) == len(report.variants) > 0
    assert diagnostic["status"] == report.status.value
    assert {
        "system": "http://loinc.org",
        "code": "51969-4",
        "display": "Genetic analysis report",
    } in (diagnostic["code"]["coding"])
    classified = [v for v in report.variants if v.classification is not None]
    assert len(of_profile(resources, "diagnostic-implication")) == len(classified)
    system, value = report.patient.identifier_system, report.patient.identifier_value
    assert diagnostic["subject"] in (
        {"reference": f"Patient?identifier={system}|{value}"},  # a transaction's
        {"type": "Patient", "identifier": {"system": system, "value": value}},
    )


def test_a_corrected_report_updates_the_originals_resources(tmp_path: Path) -> None:
    """Same filler order number, same variants: same ids and conditional update URLs, so the
    server replaces; the new status and the changed classification are what is sent."""
    original = lab_report("germline-panel.hl7")
    corrected = lab_report("germline-panel-corrected.hl7")
    assert corrected.status is ReportStatus.CORRECTED
    before = converted(original, tmp_path / "a", OutputFormat.TRANSACTION)
    after = converted(corrected, tmp_path / "b", OutputFormat.TRANSACTION)
    bundle = orjson.loads((tmp_path / "b" / "out.json").read_bytes())
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert urls == [
        e["request"]["url"]
        for e in orjson.loads((tmp_path / "a" / "out.json").read_bytes())["entry"]
    ]
    assert all(u.split("?")[1].startswith("identifier=urn:ietf:rfc:3986|urn:uuid:") for u in urls)
    (report,) = of_profile(after, "genomic-report")
    assert report["status"] == "corrected"
    tiers = [
        [c["valueCodeableConcept"]["coding"][0]["code"] for c in r["component"][:1]]
        for r in (*of_profile(before, "diagnostic-implication"),
                  *of_profile(after, "diagnostic-implication"))
    ]  # fmt: skip
    assert tiers == [["LA6668-3"], ["LA26333-7"], ["LA6668-3"], ["LA26334-5"]]


def test_a_report_without_consent_withholds_its_secondary_findings(tmp_path: Path) -> None:
    """BRCA1 and BRCA2 are on the ACMG list: outside the order's indication, with no Consent
    to secondary findings, neither is disclosed and the lab's conclusion goes with them;
    named in the indication, both are primary results. Every decision is audited."""
    report = lab_report("germline-panel.hl7")
    held = converted(report, tmp_path / "held", disclosure=disclosure(tmp_path / "held"))
    assert of_profile(held, "variant") == []
    (shown,) = of_profile(held, "genomic-report")
    assert "conclusion" not in shown and "result" not in shown
    events = (tmp_path / "held" / "audit.ndjson").read_text().splitlines()
    assert len(events) == 3  # the report's decision, then BRCA1's and BRCA2's
    asked = disclosure(tmp_path / "asked", ("BRCA1", "BRCA2"))
    primary = converted(report, tmp_path / "asked", disclosure=asked)
    assert len(of_profile(primary, "variant")) == 2
    assert [r["resourceType"] for r in primary].count("Provenance") == 1


def test_a_refused_report_writes_nothing(tmp_path: Path) -> None:
    denied = replace(disclosure(tmp_path), request=Request("HMARKT", NOW))
    out = tmp_path / "out.json"
    with pytest.raises(DisclosureDenied):
        convert_report(lab_report("somatic-tumor.hl7"), out, ReportOptions(disclosure=denied))
    assert not out.exists()
    research = replace(disclosure(tmp_path), request=Request("HRESCH", NOW))
    with pytest.raises(OptionsError, match="research"):
        convert_report(lab_report("somatic-tumor.hl7"), out, ReportOptions(disclosure=research))


def test_coordinates_without_a_genome_build_are_refused(tmp_path: Path) -> None:
    report = lab_report("somatic-tumor.hl7")
    assert any(v.call is not None for v in report.variants)
    with pytest.raises(GenomeBuildError, match="no genome build"):
        convert_report(replace(report, build=None), tmp_path / "out.json", ReportOptions())


def test_phenotypic_features_are_supporting_information(tmp_path: Path) -> None:
    """Observed features valued Present, excluded ones Absent, listed by the report as
    supporting information and not as results; the diagnoses are its conclusion codes."""
    report = lab_report("de-novo.json")
    resources = converted(report, tmp_path)
    by_id = {r["id"]: r for r in resources}
    (diagnostic,) = of_profile(resources, "genomic-report")
    supporting = [
        by_id[e["valueReference"]["reference"].removeprefix("urn:uuid:")]
        for e in diagnostic["extension"]
        if e["url"].endswith("workflow-supportingInfo")
    ]
    values = {
        r["code"]["coding"][0]["code"]: r["valueCodeableConcept"]["coding"][0]["code"]
        for r in supporting
    }
    assert {t.code: "LA9633-4" for t in report.phenotypes} | {
        t.code: "LA9634-2" for t in report.excluded_phenotypes
    } == values
    results = {r["reference"].removeprefix("urn:uuid:") for r in diagnostic["result"]}
    assert results.isdisjoint(values) and results.isdisjoint(r["id"] for r in supporting)
    codes = [c["coding"][0]["code"] for c in diagnostic["conclusionCode"]]
    assert codes == [d.code for d in report.diagnoses]


def test_an_actionable_variant_has_a_therapeutic_implication(tmp_path: Path) -> None:
    report = lab_report("recessive.json")
    resources = converted(report, tmp_path)
    (therapeutic,) = of_profile(resources, "therapeutic-implication")
    actionable = [v for v in report.variants if v.actionable]
    assert len(actionable) == 1
    medications = [
        c["valueCodeableConcept"]
        for c in therapeutic["component"]
        if c["code"]["coding"][0]["code"] == "51963-7"
    ]
    assert medications == [{"text": t.display} for t in actionable[0].therapies]
    variant = therapeutic["derivedFrom"][0]["reference"].removeprefix("urn:uuid:")
    assert variant in {r["id"] for r in of_profile(resources, "variant")}


@pytest.mark.parametrize("status", list(ReportStatus))
def test_regression_a_partial_report_wrote_an_invalid_observation_status(
    status: ReportStatus, tmp_path: Path
) -> None:
    """R4 Observations have no "partial": the results of a partial report (OBR-25 A) are
    preliminary; every other report status is the results' own."""
    report = replace(lab_report("germline-panel.hl7"), status=status)
    resources = converted(report, tmp_path)  # validated
    statuses = {r["status"] for r in of_profile(resources, "variant")}
    assert statuses == {"preliminary" if status is ReportStatus.PARTIAL else status.value}
    assert of_profile(resources, "genomic-report")[0]["status"] == status.value
