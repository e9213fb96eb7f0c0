"""Annotated VCFs (VEP CSQ, SnpEff ANN) convert to Variants that name their gene, their
representative transcript and its c. and p. HGVS."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_convert import BASE, VCF, resources_in

from adapter.convert import OutputFormat, convert_vcf

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
