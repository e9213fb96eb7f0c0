"""Tumor mutational burden and microsatellite status as molecular-biomarker Observations."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_convert import BASE, VCF, resources_in

from adapter.convert import OutputFormat, convert_vcf, tumor_biomarkers
from adapter.errors import OptionsError
from adapter.model import MicrosatelliteStatus, TumorBiomarkers

BIOMARKER = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/molecular-biomarker"
OPTIONS = replace(
    BASE,
    validate=True,
    tumor=TumorBiomarkers(12.5, MicrosatelliteStatus.MSI_H),
    specimen_id="tumor-1",
    performer="Organization/lab-1",
)


def biomarkers(out: Path, form: OutputFormat) -> dict[str, dict[str, Any]]:
    """The biomarker Observations of an output, by their LOINC code."""
    return {
        r["code"]["coding"][0]["code"]: r
        for r in resources_in(out, form)
        if BIOMARKER in r.get("meta", {}).get("profile", [])
    }


def uuid_of(resource: dict[str, Any]) -> str:
    """The UUID of a resource's business identifier (transaction entries carry no id)."""
    value: str = resource["identifier"][0]["value"]
    return value.removeprefix("urn:uuid:")


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_tmb_and_msi_are_validated_results_of_the_report(
    tmp_path: Path, form: OutputFormat
) -> None:
    out = tmp_path / "out"
    summary = convert_vcf(
        VCF / "tumor_normal.vcf", out, replace(OPTIONS, output_format=form, sample="TUMOR")
    )
    found = biomarkers(out, form)
    assert set(found) == {"94076-7", "81695-9"}
    tmb, msi = found["94076-7"], found["81695-9"]
    assert tmb["valueQuantity"] == {"value": 12.5, "unit": "mutations/Mb"}
    assert msi["valueCodeableConcept"]["coding"][0]["code"] == "LA26203-2"
    for obs in (tmb, msi):
        codes = [c["coding"][0]["code"] for c in obs["category"]]
        assert codes == ["laboratory", "biomarker-category", "GE"]
        assert obs["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "molgen"
    report = next(r for r in resources_in(out, form) if r["resourceType"] == "DiagnosticReport")
    listed = {
        ref["reference"].rsplit("/", 1)[-1].removeprefix("urn:uuid:") for ref in report["result"]
    }
    assert {uuid_of(tmb), uuid_of(msi)} <= listed
    assert summary.resources_written["Observation"] == summary.variants_converted + 2
    assert summary.validation_errors == 0


@pytest.mark.parametrize(
    ("status", "value"),
    [
        (
            MicrosatelliteStatus.MSS,
            {"coding": [{"system": "http://loinc.org", "code": "LA14122-8", "display": "Stable"}]},
        ),
        (MicrosatelliteStatus.MSI_L, {"text": "MSI-L"}),
    ],
)
def test_msi_status_without_a_confirmed_code_is_text(
    tmp_path: Path, status: MicrosatelliteStatus, value: dict[str, Any]
) -> None:
    out = tmp_path / "out.json"
    options = replace(OPTIONS, tumor=TumorBiomarkers(None, status))
    convert_vcf(VCF / "snv.vcf", out, options)
    found = biomarkers(out, OutputFormat.TRANSACTION)
    assert list(found) == ["81695-9"]
    assert found["81695-9"]["valueCodeableConcept"] == value


def test_without_tumor_measures_there_are_no_biomarkers(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    convert_vcf(VCF / "snv.vcf", out, replace(OPTIONS, tumor=None))
    assert biomarkers(out, OutputFormat.TRANSACTION) == {}
    assert b"molecular-biomarker" not in out.read_bytes()


@pytest.mark.parametrize("burden", [-1.0, math.nan, math.inf])
def test_an_impossible_burden_is_refused(tmp_path: Path, burden: float) -> None:
    with pytest.raises(OptionsError, match="mutational burden"):
        convert_vcf(
            VCF / "snv.vcf", tmp_path / "o.json", replace(OPTIONS, tumor=TumorBiomarkers(burden))
        )
    assert list(tmp_path.iterdir()) == []


def test_tumor_options_parse_or_name_what_is_wrong() -> None:
    assert tumor_biomarkers(None, None) is None
    assert tumor_biomarkers(3.0, "MSS") == TumorBiomarkers(3.0, MicrosatelliteStatus.MSS)
    with pytest.raises(OptionsError, match="MSI-H, MSI-L, MSS") as raised:
        tumor_biomarkers(None, "high")
    assert raised.value.field == "msi"


def test_biomarker_ids_are_stable_per_report(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    convert_vcf(VCF / "snv.vcf", first, OPTIONS)
    convert_vcf(
        VCF / "snv.vcf",
        second,
        replace(OPTIONS, tumor=TumorBiomarkers(30.0, MicrosatelliteStatus.MSS)),
    )
    ids = [
        {k: uuid_of(v) for k, v in biomarkers(p, OutputFormat.TRANSACTION).items()}
        for p in (first, second)
    ]
    assert len(ids[0]) == 2
    assert ids[0] == ids[1]  # a corrected value updates the resource, it does not add one
