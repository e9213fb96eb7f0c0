"""Annotated VCFs (VEP CSQ, SnpEff ANN) convert to Variants that name their gene, their
representative transcript and its c. and p. HGVS."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_convert import BASE, VCF, resources_in

from adapter.convert import OutputFormat, convert_vcf
from adapter.errors import MalformedRecordError

GENE, TRANSCRIPT, CODING, PROTEIN = "48018-6", "51958-7", "48004-6", "48005-3"


def variants(out: Path, form: OutputFormat) -> list[dict[str, Any]]:
    return [
        r
        for r in resources_in(out, form)
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "69548-6"
    ]


def parts(variant: dict[str, Any]) -> dict[str, Any]:
    """The variant's representative components, by LOINC code: the code or the text."""
    found = {}
    for c in variant["component"]:
        code = c["code"]["coding"][0]["code"]
        if code in (GENE, TRANSCRIPT, CODING, PROTEIN):
            value = c["valueCodeableConcept"]
            found[code] = value["coding"][0]["code"] if "coding" in value else value["text"]
    return found


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_vep_primary_transcripts_are_the_representative_ones(
    tmp_path: Path, form: OutputFormat
) -> None:
    out = tmp_path / "out"
    summary = convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, output_format=form))
    assert summary.validation_errors == 0
    assert summary.skipped["annotation_allele_not_in_record"] == 1
    found = [parts(v) for v in variants(out, form)]
    braf = {  # MANE Select first, over the canonical and the picked transcript
        GENE: "HGNC:1097",
        TRANSCRIPT: "ENST00000646891.2",
        CODING: "ENST00000646891.2:c.1919T>A",
        PROTEIN: "ENSP00000493543.1:p.Val640Glu",
    }
    assert braf in found
    tp53 = [f for f in found if f.get(GENE) == "HGNC:11998"]
    assert {f[PROTEIN] for f in tp53} >= {  # both ALTs of the multi-allelic record
        "ENSP00000269305.4:p.Arg248Gln",
        "ENSP00000269305.4:p.Arg248Leu",
    }
    assert {f[PROTEIN] for f in found if PROTEIN in f} >= {"ENSP00000269305.4:p.Pro72="}


def test_snpeff_coding_hgvs_gets_its_transcript_and_a_bare_protein_change_is_left_out(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    summary = convert_vcf(VCF / "snpeff_sample.vcf", out, BASE)
    assert summary.validation_errors == 0
    found = [parts(v) for v in variants(out, OutputFormat.TRANSACTION)]
    assert all(f[CODING].split(":")[0] == f[TRANSCRIPT] for f in found if CODING in f)
    assert all(PROTEIN not in f for f in found)
    assert any(f.get(CODING, "").endswith(":c.1799T>A") for f in found)


def test_unannotated_files_are_as_before(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    convert_vcf(VCF / "snv.vcf", out, BASE)
    assert all(parts(v) == {} for v in variants(out, OutputFormat.TRANSACTION))


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_clinvar_becomes_a_diagnostic_implication_of_its_variant(
    tmp_path: Path, form: OutputFormat
) -> None:
    out = tmp_path / "out"
    summary = convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, output_format=form))
    resources = list(resources_in(out, form))
    found = [r for r in resources if "diagnostic-implication" in str(r.get("meta"))]
    significance = {}
    for obs in found:
        decided = obs["component"][0]
        assert decided["code"]["coding"][0]["code"] == "53037-8"
        assert decided["extension"][0]["valueRelatedArtifact"]["label"] == "ClinVar"
        value = decided["valueCodeableConcept"]
        significance[_uuid(obs["derivedFrom"][0])] = (
            value["coding"][0]["code"] if "coding" in value else value["text"]
        )
    assert sorted(significance.values()) == ["LA26332-9", "LA6668-3", "drug response"]
    assert_derived_and_listed(found, resources)
    assert summary.validation_errors == 0


def assert_derived_and_listed(found: list[dict[str, Any]], resources: list[dict[str, Any]]) -> None:
    """Each of ``found`` is derived from a Variant of the output and listed in its report,
    referring to it as the report refers to its results (regression: NDJSON implications
    kept ``urn:uuid:`` references, which resolve nowhere outside a Bundle)."""
    variant_ids = {
        _uuid(r["identifier"][0])
        for r in resources
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "69548-6"
    }
    assert found
    assert {_uuid(o["derivedFrom"][0]) for o in found} <= variant_ids
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    assert {_uuid(o["identifier"][0]) for o in found} <= {_uuid(ref) for ref in report["result"]}
    prefixes = {r["reference"].removesuffix(_uuid(r)) for r in report["result"]}
    assert {
        o["derivedFrom"][0]["reference"].removesuffix(_uuid(o["derivedFrom"][0])) for o in found
    } == prefixes


def _uuid(reference: dict[str, str]) -> str:
    """The UUID a reference or an identifier names, whatever the output form."""
    text = reference.get("reference") or reference["value"]
    return text.rsplit("/", 1)[-1].removeprefix("urn:uuid:")


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_each_transcript_consequence_is_a_molecular_consequence(
    tmp_path: Path, form: OutputFormat
) -> None:
    out = tmp_path / "out"
    summary = convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, output_format=form))
    resources = list(resources_in(out, form))
    found = [r for r in resources if "molecular-consequence" in str(r.get("meta"))]
    implications = [r for r in resources if "diagnostic-implication" in str(r.get("meta"))]
    written = summary.resources_written["Observation"]
    assert written == summary.variants_converted + len(found) + len(implications)
    assert_derived_and_listed(found, resources)
    braf_transcripts = {"ENST00000646891.2", "ENST00000288602.11", "ENST00000479537.6"}
    braf = [c for c in found if parts(c).get(TRANSCRIPT) in braf_transcripts]
    assert len(braf) == 3  # MANE Select, canonical and a downstream transcript
    terms = {
        x["valueCodeableConcept"]["coding"][0]["code"]
        for c in braf
        for x in c["component"]
        if x["code"]["coding"][0]["code"] == "feature-consequence"
    }
    assert terms == {"SO:0001583", "SO:0001632"}  # missense, downstream gene variant


def test_a_malformed_annotation_fails_the_conversion_by_its_line(tmp_path: Path) -> None:
    lines = (VCF / "vep_sample.vcf").read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "CSQ=" in line and not line.startswith("#"))
    lines[at] = lines[at].replace("CSQ=", "CSQ=T|too|few,", 1)
    broken = tmp_path / "broken.vcf"
    broken.write_text("".join(lines))
    out = tmp_path / "out.json"
    with pytest.raises(MalformedRecordError) as raised:
        convert_vcf(broken, out, BASE)
    assert (raised.value.source, raised.value.line, raised.value.field) == (
        str(broken),
        at + 1,
        "CSQ",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.vcf"]


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_the_population_frequency_is_carried_as_the_igs_example_carries_it(
    tmp_path: Path, form: OutputFormat
) -> None:
    """gnomAD's frequency of BRAF c.1799T>A (3.98e-06 in the CSQ) as a Variant component:
    LOINC 92821-8 with a unit-less Quantity, as the IG's example
    Observation-variant-with-molec-consequences writes it; it validates."""
    out = tmp_path / "out"
    summary = convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, output_format=form))
    assert summary.validation_errors == 0
    found = {
        parts(v).get(TRANSCRIPT): c["valueQuantity"]
        for v in variants(out, form)
        for c in v["component"]
        if c["code"]["coding"][0]["code"] == "92821-8"
    }
    assert found["ENST00000646891.2"] == {
        "value": pytest.approx(3.98e-06),
        "system": "http://unitsofmeasure.org",
        "code": "1",
    }
