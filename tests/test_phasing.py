"""Phased genotypes: alleles on haplotypes, cis/trans relations within a phase set and gene,
compound heterozygotes, and their sequence-phase-relationship and genotype Observations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapter.errors import MalformedRecordError
from adapter.fhir.identifiers import IdFactory
from adapter.fhir.phase import PhaseRelationships
from adapter.model import (
    AlleleAnnotation,
    AnalysisContext,
    ClinicalSignificance,
    ClinVarAssertion,
    GenomeBuild,
    PatientRef,
    TranscriptConsequence,
    VariantCall,
    Zygosity,
)
from adapter.phasing import PhasedAllele, PhaseRelation, PhaseTracker, phased_allele
from adapter.readers.vcf import VcfReader
from adapter.validation import Validator

FIXTURE = Path(__file__).parent / "data" / "vcf" / "phased_compound_het.vcf"
PHASE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/sequence-phase-relationship"
GENOTYPE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/genotype"
PHASE_CS = "http://terminology.hl7.org/CodeSystem/sequence-phase-relationship-cs"
P, LP, VUS, B = (
    ClinicalSignificance.PATHOGENIC,
    ClinicalSignificance.LIKELY_PATHOGENIC,
    ClinicalSignificance.UNCERTAIN_SIGNIFICANCE,
    ClinicalSignificance.BENIGN,
)
CTX = AnalysisContext(
    patient=PatientRef(id="p-1"),
    build=GenomeBuild.GRCH38,
    sample="PROBAND",
    issued=datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
    file_date="20260115",
    input_name="phased_compound_het.vcf",
)


def vid(n: int) -> str:
    """A Variant Observation id, a UUID as the conversion makes them."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"variant-{n}"))


def allele(
    position: int,
    haplotypes: tuple[int, ...],
    *,
    gene: str | None = "NMNAT1",
    tier: ClinicalSignificance | None = None,
    phase_set: int | None = 100,
    chromosome: str = "1",
) -> PhasedAllele:
    return PhasedAllele(vid(position), chromosome, position, phase_set, haplotypes, gene, tier)


def pairs(relations: list[PhaseRelation]) -> list[tuple[int, int, str]]:
    return [(r.first.position, r.second.position, r.relation) for r in relations]


def related(*alleles: PhasedAllele, reach: int = 2_500_000) -> list[tuple[int, int, str]]:
    return pairs(list(PhaseTracker(reach).relate(alleles)))


# ---- one call's haplotypes ---------------------------------------------------------------


def call(genotype: str, alt_index: int = 1, **fields: object) -> VariantCall:
    found = VariantCall(
        "chr1", "1", 9950500, "A", "G", alt_index, genotype, Zygosity.HETEROZYGOUS, line=42
    )
    found.phased = "|" in genotype
    return replace(found, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("genotype", "alt_index", "haplotypes"),
    [
        ("0|1", 1, (1,)),
        ("1|0", 1, (0,)),
        ("1|1", 1, (0, 1)),
        ("1|2", 1, (0,)),
        ("1|2", 2, (1,)),
        ("2|0", 2, (0,)),
        ("1|.", 1, (0,)),
    ],
)
def test_a_phased_gt_puts_the_alt_on_its_haplotypes(
    genotype: str, alt_index: int, haplotypes: tuple[int, ...]
) -> None:
    found = phased_allele(call(genotype, alt_index, phase_set=9950500), "v")
    assert found is not None
    assert (found.haplotypes, found.ploidy, found.phase_set) == (haplotypes, 2, 9950500)
    assert found.homozygous is (genotype == "1|1")


def test_unphased_calls_have_no_phase() -> None:
    assert phased_allele(call("0/1"), "v") is None


def test_a_phased_gt_without_its_alt_is_a_malformed_record() -> None:
    with pytest.raises(MalformedRecordError, match=r"'0\|2' does not carry ALT 1") as caught:
        phased_allele(call("0|2"), "v")
    assert (caught.value.line, caught.value.field) == (42, "GT")


def test_gene_transcript_and_class_come_from_the_annotations_the_lab_class_first() -> None:
    primary = TranscriptConsequence(
        ("missense_variant",),
        gene_symbol="NMNAT1",
        hgnc_id="HGNC:17877",
        transcript="NM_022787.3",
        hgvs_c="c.53A>G",
    )
    annotated = call(
        "0|1",
        annotation=AlleleAnnotation(1, primary),
        clinvar=ClinVarAssertion("Uncertain significance", VUS),
    )
    found = phased_allele(annotated, "v")
    assert found is not None
    assert (found.gene, found.hgnc_id, found.transcript, found.hgvs_c, found.tier) == (
        "NMNAT1",
        "HGNC:17877",
        "NM_022787.3",
        "c.53A>G",
        VUS,
    )
    lab = phased_allele(annotated, "v", LP)
    assert lab is not None and lab.tier is LP


# ---- relations ---------------------------------------------------------------------------


def test_same_haplotype_is_cis_and_different_ones_trans() -> None:
    assert related(allele(10, (1,)), allele(20, (1,)), allele(30, (0,))) == [
        (10, 20, "Cis"),
        (20, 30, "Trans"),
    ]


def test_two_alts_of_one_record_are_in_trans() -> None:
    gene = TranscriptConsequence(("missense_variant",), gene_symbol="NMNAT1")
    record = call("1|2", phase_set=100, annotation=AlleleAnnotation(1, gene))
    first = phased_allele(record, vid(1))
    second = phased_allele(replace(record, alt="C", alt_index=2), vid(2))
    assert first is not None and second is not None
    assert [r.relation for r in PhaseTracker().relate([first, second])] == ["Trans"]


@pytest.mark.parametrize(
    "other",
    [
        allele(20, (1,), phase_set=200),  # another phase set
        allele(20, (1,), phase_set=None),  # a phased GT without PS: its own block
        allele(20, (1,), chromosome="2"),  # another chromosome
        allele(20, (1,), gene="USH2A"),  # another gene
        allele(20, (1,), gene=None),  # no gene
        allele(20, (0, 1)),  # homozygous
    ],
    ids=["phase-set", "no-ps", "chromosome", "gene", "no-gene", "homozygous"],
)
def test_no_relation_outside_one_chromosome_phase_set_and_gene(other: PhasedAllele) -> None:
    assert related(allele(10, (1,)), other) == []


def test_phased_gts_without_ps_form_one_block_per_chromosome() -> None:
    assert related(allele(10, (0,), phase_set=None), allele(900_000, (1,), phase_set=None)) == [
        (10, 900_000, "Trans")
    ]


def test_a_homozygous_allele_does_not_break_the_chain() -> None:
    assert related(allele(10, (1,)), allele(20, (0, 1)), allele(30, (0,))) == [(10, 30, "Trans")]


def test_plain_alleles_chain_and_classified_ones_relate_to_every_classified_one() -> None:
    chain = related(allele(10, (1,)), allele(20, (1,)), allele(30, (0,)))
    assert chain == [(10, 20, "Cis"), (20, 30, "Trans")]  # 10-30 follows: cis then trans
    weighed = related(
        allele(10, (1,), tier=P), allele(20, (1,), tier=B), allele(30, (0,), tier=VUS)
    )
    assert weighed == [(10, 20, "Cis"), (10, 30, "Trans"), (20, 30, "Trans")]


def test_relations_stream_as_the_alleles_arrive() -> None:
    def alleles() -> Iterator[PhasedAllele]:
        yield allele(10, (1,))
        yield allele(20, (0,))
        raise AssertionError("read past the allele that completed the relation")

    assert pairs([next(PhaseTracker().relate(alleles()))]) == [(10, 20, "Trans")]


def test_blocks_the_file_has_moved_past_are_dropped() -> None:
    tracker = PhaseTracker(reach=1_000)
    tracker.add(allele(100, (1,)))
    tracker.add(allele(500, (1,), gene="USH2A"))
    assert pairs(tracker.add(allele(1_050, (0,)))) == [(100, 1_050, "Trans")]  # within reach
    tracker.add(allele(1_200, (1,), gene="GJB2"))  # a sweep: every block is within reach
    assert tracker.open_blocks == 3
    assert tracker.add(allele(2_300, (0,), gene="GJB2")) == []  # a sweep: all out of reach
    assert tracker.open_blocks == 1
    assert tracker.add(allele(2_400, (0,), gene="USH2A")) == []
    assert tracker.open_blocks == 2
    tracker.add(allele(10, (1,), chromosome="2"))
    assert tracker.open_blocks == 1


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ((P, (0,)), (LP, (1,)), True),
        ((LP, (1,)), (LP, (0,)), True),
        ((P, (0,)), (P, (0,)), False),  # cis: one haplotype still works
        ((P, (0,)), (VUS, (1,)), False),
        ((P, (0,)), (None, (1,)), False),
    ],
)
def test_compound_heterozygote_is_two_pathogenic_alleles_in_trans(
    first: tuple[ClinicalSignificance | None, tuple[int, ...]],
    second: tuple[ClinicalSignificance | None, tuple[int, ...]],
    expected: bool,
) -> None:
    tracker = PhaseTracker()
    tracker.add(allele(10, first[1], tier=first[0]))
    (relation,) = tracker.add(allele(20, second[1], tier=second[0]))
    assert relation.compound_heterozygous is expected


# ---- the FHIR Observations ---------------------------------------------------------------


def nmnat1(position: int, haplotype: int, hgvs_c: str, tier: ClinicalSignificance) -> PhasedAllele:
    return PhasedAllele(
        vid(position),
        "1",
        position,
        9950500,
        (haplotype,),
        "NMNAT1",
        tier,
        hgnc_id="HGNC:17877",
        transcript="NM_022787.3",
        hgvs_c=hgvs_c,
    )


COMPOUND = PhaseRelation(
    nmnat1(9950500, 1, "NM_022787.3:c.53A>G", LP),
    nmnat1(9982700, 0, "NM_022787.3:c.769G>A", P),
    "Trans",
)


def errors(validator: Validator, resource: dict[str, object]) -> list[str]:
    return [f"{i.path}: {i.message}" for i in validator.validate(resource) if i.severity == "error"]


def test_a_relation_is_a_valid_sequence_phase_relationship(validator: Validator) -> None:
    obs = PhaseRelationships(CTX).observation(COMPOUND)
    assert errors(validator, obs) == []
    first, second = COMPOUND.first.variant_id, COMPOUND.second.variant_id
    assert obs["id"] == IdFactory(CTX).resource(f"phase|{first}|{second}")
    assert obs["meta"]["profile"] == [PHASE]
    assert obs["code"]["coding"][0]["code"] == "82120-7"
    assert obs["valueCodeableConcept"]["coding"] == [
        {"system": PHASE_CS, "code": "Trans", "display": "Trans"}
    ]
    assert obs["derivedFrom"] == [
        {"reference": f"urn:uuid:{first}", "type": "Observation"},
        {"reference": f"urn:uuid:{second}", "type": "Observation"},
    ]
    assert (obs["subject"], obs["effectiveDateTime"]) == (
        {"reference": "Patient/p-1"},
        "2026-01-15",
    )


def test_a_compound_heterozygote_is_a_valid_genotype_named_in_hgvs(validator: Validator) -> None:
    build = PhaseRelationships(CTX)
    genotype = build.genotype(COMPOUND)
    assert genotype is not None
    assert errors(validator, genotype) == []
    assert genotype["meta"]["profile"] == [GENOTYPE]
    assert genotype["code"]["coding"][0]["code"] == "84413-4"
    assert genotype["valueCodeableConcept"] == {"text": "NM_022787.3(NMNAT1):c.[53A>G];[769G>A]"}
    assert [d["display"] for d in genotype["derivedFrom"]] == [
        "NM_022787.3:c.53A>G",
        "NM_022787.3:c.769G>A",
    ]
    gene = genotype["component"][0]["valueCodeableConcept"]["coding"][0]
    assert (gene["code"], gene["display"]) == ("HGNC:17877", "NMNAT1")
    assert build.conclusion(COMPOUND) == (
        "NMNAT1: compound heterozygous, NM_022787.3:c.53A>G (Likely pathogenic) and "
        "NM_022787.3:c.769G>A (Pathogenic) are in trans."
    )


def test_a_genotype_across_transcripts_is_named_in_words(validator: Validator) -> None:
    other = replace(COMPOUND.first, transcript=None, hgvs_c=None, hgnc_id=None)
    genotype = PhaseRelationships(CTX).genotype(replace(COMPOUND, first=other))
    assert genotype is not None
    assert errors(validator, genotype) == []
    assert genotype["valueCodeableConcept"]["text"] == (
        "NMNAT1: chr1:9950500 in trans with NM_022787.3:c.769G>A"
    )
    assert genotype["component"][0]["valueCodeableConcept"] == {"text": "NMNAT1"}


def test_other_relations_make_no_genotype() -> None:
    cis = replace(COMPOUND, relation="Cis")
    build = PhaseRelationships(CTX)
    assert (build.genotype(cis), build.conclusion(cis)) == (None, None)


# ---- the fixture, read as the conversion reads it ----------------------------------------


def test_the_phased_fixture_relates_the_compound_heterozygote_and_the_cis_pair(
    validator: Validator,
) -> None:
    ids = IdFactory(CTX)
    with VcfReader(FIXTURE) as reader:
        calls = list(reader)
    assert len(calls) == 8
    alleles = [phased_allele(c, ids.variant(c)[0]) for c in calls]
    assert [c.pos for c, a in zip(calls, alleles, strict=True) if a is None] == [9961200]
    relations = list(PhaseTracker().relate(a for a in alleles if a is not None))
    assert [
        (*p, r.compound_heterozygous) for p, r in zip(pairs(relations), relations, strict=True)
    ] == [
        (9950500, 9982700, "Trans", True),
        (216000100, 216000250, "Cis", False),
    ]
    build = PhaseRelationships(CTX)
    made = [build.observation(r) for r in relations]
    made += [g for r in relations if (g := build.genotype(r)) is not None]
    assert len(made) == 3
    assert all(errors(validator, obs) == [] for obs in made)
    assert made[2]["valueCodeableConcept"]["text"] == "NM_022787.3(NMNAT1):c.[53A>G];[769G>A]"
