"""The actionability knowledge file and the therapeutic implications it yields."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_biomarkers import OPTIONS, uuid_of
from test_convert import VCF, resources_in

from adapter.convert import OutputFormat, convert_vcf
from adapter.errors import InputError
from adapter.model import (
    ConversionSummary,
    GenomicSourceClass,
    MicrosatelliteStatus,
    SvType,
    TumorBiomarkers,
    VariantCall,
)
from adapter.readers.knowledge import Effect, Match, read_knowledge
from adapter.readers.vcf import VcfReader

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "actionability.tsv"
HEADER = "match\tgene\talteration\tcondition\tmedication\teffect\tevidence\tsource\n"
IMPLICATION = (
    "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/therapeutic-implication"
)


def test_the_example_covers_the_cases_the_field_cites() -> None:
    knowledge = read_knowledge(EXAMPLE)
    assert knowledge.label() == "Example oncology actionability 2026-11"
    cases = {(r.match, r.gene, r.alteration) for r in knowledge.rules}
    assert (Match.VARIANT, "EGFR", "p.Leu858Arg") in cases
    assert (Match.VARIANT, "BRAF", "p.Val600Glu") in cases
    assert (Match.CLASS, "ERBB2", "amplification") in cases
    assert {(Match.CLASS, g, "loss_of_function") for g in ("BRCA1", "BRCA2")} <= cases
    assert (Match.BIOMARKER, "", "MSI-H") in cases
    assert all(
        r.effect is Effect.RESPONSIVE and r.source.startswith("https://") for r in knowledge.rules
    )


@pytest.mark.parametrize(
    ("burden", "status", "matched"),
    [
        (12.0, MicrosatelliteStatus.MSI_H, {"msi", "tmb"}),
        (10.0, None, {"tmb"}),
        (9.9, MicrosatelliteStatus.MSS, set()),
        (None, MicrosatelliteStatus.MSI_H, {"msi"}),
    ],
)
def test_biomarker_rules_match_by_status_and_threshold(
    burden: float | None, status: MicrosatelliteStatus | None, matched: set[str]
) -> None:
    found = read_knowledge(EXAMPLE).for_tumor(TumorBiomarkers(burden, status))
    assert {kind for kind, _ in found} == matched


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("match\tgene\n", 1, "header"),
        (HEADER + "variant\tEGFR\tp.Leu858Arg\tNSCLC\tosimertinib\tworks\t\t\n", 2, "effect"),
        (HEADER + "variant\t\tp.Leu858Arg\tNSCLC\tosimertinib\tresponsive\t\t\n", 2, "gene"),
        (HEADER + "biomarker\t\tTMB>=lots\tAny\tdrug\tresponsive\t\t\n", 2, "TMB>=N"),
        (HEADER + "biomarker\t\tMSI-H\tAny\tresponsive\t\t\n", 2, "columns"),
        (HEADER + "class\tERBB2\tamplification\tBreast\t\tresponsive\t\t\n", 2, "medication"),
        (HEADER + "class\tKRAS\tactivating\tNSCLC\tsotorasib\tresponsive\t\t\n", 2, "class"),
        ("# name: empty\n", None, "no header"),
    ],
)
def test_a_bad_knowledge_file_names_its_line(
    tmp_path: Path, text: str, line: int | None, needle: str
) -> None:
    path = tmp_path / "k.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as raised:
        read_knowledge(path)
    assert (raised.value.source, raised.value.line) == (str(path), line)


def implications(out: Path, form: OutputFormat) -> list[dict[str, Any]]:
    return [
        r for r in resources_in(out, form) if IMPLICATION in r.get("meta", {}).get("profile", [])
    ]


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_msi_high_and_high_burden_yield_validated_implications(
    tmp_path: Path, form: OutputFormat
) -> None:
    out = tmp_path / "out"
    options = replace(
        OPTIONS,
        output_format=form,
        knowledge=EXAMPLE,
        tumor=TumorBiomarkers(12.0, MicrosatelliteStatus.MSI_H),
    )
    summary = convert_vcf(VCF / "snv.vcf", out, options)
    assert summary.validation_errors == 0
    resources = list(resources_in(out, form))
    biomarkers = {
        r["code"]["coding"][0]["code"]: uuid_of(r)
        for r in resources
        if "molecular-biomarker" in str(r.get("meta"))
    }
    found = implications(out, form)
    assert len(found) == 2
    derived = {
        ref["reference"].rsplit("/", 1)[-1].removeprefix("urn:uuid:")
        for r in found
        for ref in r["derivedFrom"]
    }
    assert derived == set(biomarkers.values())
    for obs in found:
        parts = {
            c["code"]["coding"][0]["code"]: c["valueCodeableConcept"] for c in obs["component"]
        }
        assert parts["therapeutic-implication"]["coding"][0]["code"] == "LA6677-4"
        assert parts["51963-7"] == {"text": "pembrolizumab"}
        assert parts["81259-4"] == {"text": "Solid tumor"}
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    listed = {
        ref["reference"].rsplit("/", 1)[-1].removeprefix("urn:uuid:") for ref in report["result"]
    }
    assert {uuid_of(r) for r in found} <= listed
    analysis = next(r for r in resources if "genomic-study-analysis" in str(r.get("meta")))
    assert {"text": "Actionability knowledge: Example oncology actionability 2026-11"} in analysis[
        "note"
    ]


def test_no_match_no_implication_and_the_source_still_named(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    options = replace(
        OPTIONS, knowledge=EXAMPLE, tumor=TumorBiomarkers(2.0, MicrosatelliteStatus.MSS)
    )
    convert_vcf(VCF / "snv.vcf", out, options)
    assert implications(out, OutputFormat.TRANSACTION) == []
    assert b"Actionability knowledge: Example oncology actionability 2026-11" in out.read_bytes()


def test_a_missing_knowledge_file_fails_before_any_output(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="knowledge file"):
        convert_vcf(
            VCF / "snv.vcf", tmp_path / "o.json", replace(OPTIONS, knowledge=tmp_path / "none.tsv")
        )
    assert list(tmp_path.iterdir()) == []


def test_annotated_variants_meet_variant_and_class_rules_in_any_process_count(
    tmp_path: Path,
) -> None:
    """BRAF p.Val600Glu (named on the canonical transcript, not the MANE one) and a BRCA1
    frameshift (loss of function) get their therapeutic implications, derived from them."""
    outputs = []
    for jobs in (1, 2):
        out = tmp_path / f"out-{jobs}.json"
        options = replace(OPTIONS, knowledge=EXAMPLE, tumor=None, jobs=jobs)
        convert_vcf(VCF / "vep_sample.vcf", out, options)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    found = implications(tmp_path / "out-1.json", OutputFormat.TRANSACTION)
    medications = sorted(
        c["valueCodeableConcept"]["text"]
        for obs in found
        for c in obs["component"]
        if c["code"]["coding"][0]["code"] == "51963-7"
    )
    assert medications == ["olaparib", "vemurafenib"]
    variants = {
        uuid_of(r)
        for r in resources_in(tmp_path / "out-1.json", OutputFormat.TRANSACTION)
        if r.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"
    }
    for obs in found:
        assert obs["derivedFrom"][0]["reference"].removeprefix("urn:uuid:") in variants


AMPLIFIED = VCF / "erbb2_amplification.vcf"  # CNVkit calls, VEP-annotated: TP53 loss, ERBB2 CN 8


def amplified_calls() -> tuple[VariantCall, VariantCall]:
    """The TP53 deletion and the ERBB2 duplication of the fixture, with their annotations."""
    summary = ConversionSummary()
    with VcfReader(AMPLIFIED, summary=summary) as reader:
        loss, gain = reader
    assert summary.skipped == {}  # VEP's "deletion"/"duplication" alleles found their ALTs
    return loss, gain


def test_vep_annotations_of_symbolic_alleles_reach_their_calls() -> None:
    loss, gain = amplified_calls()
    assert loss.annotation is not None and loss.annotation.primary is not None
    assert gain.annotation is not None and gain.annotation.primary is not None
    assert (loss.annotation.primary.gene_symbol, gain.annotation.primary.gene_symbol) == (
        "TP53",
        "ERBB2",
    )
    assert gain.structural is not None and gain.structural.copy_number == 8


def test_an_erbb2_copy_gain_meets_the_amplification_rule() -> None:
    knowledge = read_knowledge(EXAMPLE)
    loss, gain = amplified_calls()
    found = knowledge.for_call(gain, None)
    assert [(r.gene, r.alteration, r.medication) for r in found] == [
        ("ERBB2", "amplification", "trastuzumab")
    ]
    assert knowledge.for_call(loss, None) == []  # TP53 has no rule; a loss is no gain
    assert gain.annotation is not None
    assert knowledge.for_allele(gain.annotation) == []  # the copy number decides, not VEP


def _with(call: VariantCall, **changes: Any) -> VariantCall:
    """The call with other structural facts (``sv_type``, ``copy_number``) or locus."""
    assert call.structural is not None
    sv_changes = {k: v for k, v in changes.items() if k in ("sv_type", "copy_number")}
    locus = {k: v for k, v in changes.items() if k not in sv_changes}
    return replace(call, structural=replace(call.structural, **sv_changes), **locus)


@pytest.mark.parametrize(
    ("changes", "male", "amplified"),
    [
        ({"copy_number": 2.0}, None, False),  # a DUP at normal copy number
        ({"copy_number": None}, None, False),  # no copy number stated: not taken for a gain
        ({"copy_number": 3.0}, None, True),
        ({"sv_type": SvType.CNV}, None, True),
        ({"sv_type": SvType.INV}, None, False),
        ({"chromosome": "X", "copy_number": 2.0}, True, True),  # two X copies in a male
        ({"chromosome": "X", "copy_number": 2.0}, None, False),  # normal for a female
        ({"chromosome": "X", "copy_number": 3.0}, None, True),  # a gain in anyone
        ({"chromosome": "M", "copy_number": 8.0}, None, False),  # no normal copy number
    ],
)
def test_only_a_copy_number_above_normal_is_an_amplification(
    changes: dict[str, Any], male: bool | None, amplified: bool
) -> None:
    _, gain = amplified_calls()
    found = read_knowledge(EXAMPLE).for_call(_with(gain, **changes), male)
    assert bool(found) is amplified


def test_a_gain_beside_a_gene_is_no_amplification_of_it() -> None:
    _, gain = amplified_calls()
    assert gain.annotation is not None and gain.annotation.primary is not None
    nearby = replace(gain.annotation.primary, consequences=("upstream_gene_variant",))
    call = replace(gain, annotation=replace(gain.annotation, primary=nearby))
    assert read_knowledge(EXAMPLE).for_call(call, None) == []


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_an_amplified_erbb2_gets_a_validated_trastuzumab_implication(
    tmp_path: Path, form: OutputFormat
) -> None:
    options = replace(
        OPTIONS,
        output_format=form,
        knowledge=EXAMPLE,
        tumor=None,
        source_class=GenomicSourceClass.SOMATIC,
    )
    out = tmp_path / "out"
    summary = convert_vcf(AMPLIFIED, out, options)
    assert summary.validation_errors == 0
    found = implications(out, form)
    assert len(found) == 1
    parts = {
        c["code"]["coding"][0]["code"]: c["valueCodeableConcept"] for c in found[0]["component"]
    }
    assert parts["51963-7"] == {"text": "trastuzumab"}
    duplication = next(
        r
        for r in resources_in(out, form)
        if r.get("code", {}).get("coding", [{}])[0].get("code") == "69548-6"
        and "ERBB2" in str(r["component"])
    )
    reference = found[0]["derivedFrom"][0]["reference"]
    assert reference.rsplit("/", 1)[-1].removeprefix("urn:uuid:") == uuid_of(duplication)
    normal = tmp_path / "normal.vcf"
    normal.write_text(AMPLIFIED.read_text().replace("0/1:8", "0/1:2"))
    convert_vcf(normal, tmp_path / "normal-out", options)
    assert implications(tmp_path / "normal-out", form) == []


def test_a_somatic_tumor_normal_pair_meets_its_variant_and_biomarker_rules(
    tmp_path: Path,
) -> None:
    """Mutect2 tumor/normal calls annotated by VEP: EGFR p.Leu858Arg in the tumor meets its
    rule (osimertinib), MSI-H and a burden of 12.5 theirs (pembrolizumab twice); KRAS G12D, in
    no rule of the example, gets nothing, and the TP53 call filtered as germline is not
    converted. All of it validates, and the conclusion states each therapy."""
    out = tmp_path / "tumor.json"
    options = replace(
        OPTIONS, knowledge=EXAMPLE, sample="TUMOR", source_class=GenomicSourceClass.SOMATIC
    )
    summary = convert_vcf(VCF / "tumor_normal_vep.vcf", out, options)
    assert summary.validation_errors == 0
    assert summary.variants_converted == 2
    assert summary.skipped.get("filtered") == 1
    resources = list(resources_in(out, OutputFormat.TRANSACTION))
    genes = {
        uuid_of(r): next(
            c["valueCodeableConcept"]["coding"][0]["display"]
            for c in r["component"]
            if c["code"]["coding"][0]["code"] == "48018-6"  # gene studied
        )
        for r in resources
        if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "69548-6"
    }
    assert sorted(genes.values()) == ["EGFR", "KRAS"]
    found = implications(out, OutputFormat.TRANSACTION)
    medications = {
        genes.get(obs["derivedFrom"][0]["reference"].removeprefix("urn:uuid:"), "biomarker"): c[
            "valueCodeableConcept"
        ]["text"]
        for obs in found
        for c in obs["component"]
        if c["code"]["coding"][0]["code"] == "51963-7"  # medication assessed
    }
    assert medications == {"EGFR": "osimertinib", "biomarker": "pembrolizumab"}
    assert len(found) == 3
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    assert "osimertinib" in report["conclusion"] and "pembrolizumab" in report["conclusion"]
