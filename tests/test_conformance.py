"""Variants checked by shape: the first of a shape whole, later ones by their own parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter.conformance import VariantChecks
from adapter.convert import ConvertOptions, convert_vcf
from adapter.errors import ValidationFailed
from adapter.model import PatientRef
from adapter.validation import Validator

HEADER = """##fileformat=VCFv4.2
##fileDate=20260115
##reference=GRCh38
##contig=<ID=chr1,length=248956422>
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""
OPTIONS = ConvertOptions(patient=PatientRef(id="p1"), validate=True, jobs=1)


@pytest.fixture
def same_shape(tmp_path: Path) -> Path:
    """Five heterozygous SNVs on chr1 with depths: one shape, five sets of values."""
    lines = [
        f"chr1\t{1000 + 10 * i}\t.\tA\tG\t50\tPASS\t.\tGT:AD\t0/1:10,{5 + i}\n" for i in range(5)
    ]
    path = tmp_path / "same_shape.vcf"
    path.write_text(HEADER + "".join(lines))
    return path


def test_a_bad_value_in_a_later_variant_of_a_checked_shape_is_caught(
    tmp_path: Path, same_shape: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = VariantChecks.__call__

    def bad_fourth(
        self: VariantChecks, rid: str, shape: Any, values: list[Any], notes: Any
    ) -> None:
        """The fourth variant's HGVS, as the checks are shown it (by the C lane), is broken."""
        if values[0] == 1030:
            values = [*values[:4], "not hgvs", *values[5:]]
        real(self, rid, shape, values, notes)

    monkeypatch.setattr(VariantChecks, "__call__", bad_fourth)
    out = tmp_path / "out.json"
    with pytest.raises(ValidationFailed) as raised:
        convert_vcf(same_shape, out, OPTIONS)
    paths = [i.path for i in raised.value.issues]
    assert any(p.startswith("Observation.component[") for p in paths), paths
    assert not out.exists()


def test_parts_checked_in_place_match_the_whole_resource_check(
    validator: Validator, same_shape: Path, tmp_path: Path
) -> None:
    """Every Observation of the shape is valid whole, as its parts said."""
    out = tmp_path / "out.json"
    convert_vcf(same_shape, out, OPTIONS)
    for entry in orjson.loads(out.read_bytes())["entry"]:
        errors = [i for i in validator.validate(entry["resource"]) if i.severity == "error"]
        assert errors == []


def test_part_checker_reports_a_component_against_its_slice(validator: Validator) -> None:
    profile = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
    loinc = "http://loinc.org"
    good = {
        "code": {"coding": [{"system": loinc, "code": "69547-8"}]},
        "valueString": "A",
    }
    check = validator.part_checker(profile, "component")
    assert [i for i in check(good) if i.severity == "error"] == []
    bad = {"code": good["code"], "valueQuantity": {"value": 1}}
    issues = check(bad)
    assert any(i.severity == "error" and i.path.startswith("Observation.component") for i in issues)


def test_part_checker_tells_slices_apart_by_code_not_by_the_code_seen_before(
    validator: Validator,
) -> None:
    """The slice a code decides is remembered by the code object: a different code object,
    even of equal text, is matched afresh, and a known one still has its value checked."""
    profile = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
    ref_allele = {"coding": [{"system": "http://loinc.org", "code": "69547-8"}]}
    depth = {"coding": [{"system": "http://loinc.org", "code": "82121-5"}]}
    check = validator.part_checker(profile, "component")
    assert errors(check({"code": ref_allele, "valueString": "A"})) == []
    assert errors(check({"code": depth, "valueQuantity": {"value": 3}})) == []
    assert errors(check({"code": depth, "valueString": "A"}))
    copied = {"coding": [dict(ref_allele["coding"][0])]}
    assert errors(check({"code": copied, "valueString": "A"})) == []
    assert errors(check({"code": copied, "valueQuantity": {"value": 3}}))


def errors(issues: list[Any]) -> list[Any]:
    return [i for i in issues if i.severity == "error"]
