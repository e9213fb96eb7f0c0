"""VEP CSQ, SnpEff ANN and ClinVar INFO read into the model, from small hand-written VCFs."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cyvcf2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import MalformedRecordError
from adapter.model import (
    AnnotationSource,
    AnnotationTool,
    ClinicalSignificance,
    ClinVarCondition,
    ConversionSummary,
    Impact,
    RecordAnnotations,
)
from adapter.readers.annotations import (
    SKIP_UNMATCHED,
    AnnotationParser,
    PrimaryRule,
    count_skips,
    find_sources,
    parse_clinvar,
    sequence_ontology,
    significance_tier,
)
from adapter.readers.vcf import VcfReader
from adapter.readers.vcf_text import FieldSpec, VcfHeader, open_stream, read_header

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "vcf"
MAPPINGS = ROOT / "mappings"


def _header(path: Path) -> VcfHeader:
    with open_stream(path, "plain") as stream:
        return read_header(stream, path.name)


def _annotate(name: str, **options: Any) -> Iterator[RecordAnnotations]:
    """Each record of a fixture as the parser reads it, with its line number."""
    path = DATA / name
    header = _header(path)
    parser = AnnotationParser(header, origin=name, **options)
    for line, variant in enumerate(cyvcf2.VCF(str(path)), header.lines + 1):
        yield parser.parse(variant.REF, variant.ALT, variant.INFO, line)


def test_header_keeps_the_description_of_info_keys() -> None:
    header = _header(DATA / "vep_annotated.vcf")
    csq = header.infos["CSQ"]
    assert csq.description.startswith("Consequence annotations from Ensembl VEP. Format: Allele|")
    assert header.infos["CLNSIG"].description.startswith("Aggregate germline classification")


def test_sources_and_versions_come_from_the_header() -> None:
    assert find_sources(_header(DATA / "vep_annotated.vcf")) == (
        AnnotationSource(AnnotationTool.VEP, "CSQ", "v110"),
    )
    assert find_sources(_header(DATA / "snpeff_annotated.vcf")) == (
        AnnotationSource(AnnotationTool.SNPEFF, "ANN", "5.1d"),
    )
    assert find_sources(_header(DATA / "snv.vcf")) == ()


def test_vep_primary_is_the_mane_select_transcript_and_the_others_are_kept() -> None:
    braf = next(_annotate("vep_annotated.vcf")).alleles[0]
    assert braf.alt_index == 1
    assert braf.primary is not None
    assert braf.primary.transcript == "ENST00000646891.2"
    assert braf.primary.mane_select == "NM_001374258.1"
    assert braf.primary.canonical
    assert [t.transcript for t in braf.others] == ["ENST00000288602.11", "ENST00000479537.6"]
    picked = braf.others[0]
    assert picked.picked and not picked.canonical and picked.mane_select is None
    assert picked.hgvs_c == "ENST00000288602.11:c.1799T>A"
    assert picked.hgvs_p == "ENSP00000288602.7:p.Val600Glu"
    assert picked.gene_symbol == "BRAF"
    assert picked.gene_id == "ENSG00000157764"
    assert picked.hgnc_id == "HGNC:1097"
    assert picked.biotype == "protein_coding"
    assert picked.consequences == ("missense_variant",)
    assert picked.impact is Impact.MODERATE
    assert braf.others[1].impact is Impact.MODIFIER
    assert braf.population_af == pytest.approx(3.98e-06)


def test_primary_order_is_configurable() -> None:
    first = next(_annotate("vep_annotated.vcf", primary_order=(PrimaryRule.PICKED,)))
    assert first.alleles[0].primary is not None
    assert first.alleles[0].primary.transcript == "ENST00000288602.11"
    listed = next(_annotate("vep_annotated.vcf", primary_order=()))
    assert listed.alleles[0].primary is not None
    assert listed.alleles[0].primary.transcript == "ENST00000288602.11"


def test_the_reader_passes_the_transcript_order_on() -> None:
    """What the user configures reaches the calls, on the reader's fast lane as off it."""

    def braf(order: tuple[PrimaryRule, ...]) -> str | None:
        with VcfReader(DATA / "vep_sample.vcf", transcript_order=order) as reader:
            call = next(c for c in reader if c.pos == 140753336)
        assert call.annotation is not None and call.annotation.primary is not None
        return call.annotation.primary.transcript

    assert braf((PrimaryRule.MANE_SELECT, PrimaryRule.CANONICAL)) == "ENST00000646891.2"
    assert braf((PrimaryRule.PICKED, PrimaryRule.MANE_SELECT)) == "ENST00000288602.11"


def test_multiallelic_record_gets_one_annotation_per_alt() -> None:
    tp53 = list(_annotate("vep_annotated.vcf"))[1]
    assert [a.alt_index for a in tp53.alleles] == [1, 2]
    assert [a.primary.hgvs_p for a in tp53.alleles if a.primary] == [
        "ENSP00000269305.4:p.Arg248Gln",
        "ENSP00000269305.4:p.Arg248Leu",
    ]
    # no gnomAD field in the CSQ entries: INFO gnomAD_AF (Number=A) fills in, '.' stays None
    assert tp53.alleles[0].population_af == pytest.approx(7.95e-06)
    assert tp53.alleles[1].population_af is None
    assert tp53.unmatched == 0


def test_escaped_hgvs_and_an_allele_the_record_lacks() -> None:
    synonymous = list(_annotate("vep_annotated.vcf"))[2]
    allele = synonymous.alleles[0]
    assert allele.primary is not None
    assert allele.primary.hgvs_p == "ENSP00000269305.4:p.Pro72="
    assert allele.others == ()
    assert synonymous.unmatched == 1  # the entry for allele C; the record's ALT is A
    summary = ConversionSummary()
    count_skips(synonymous, summary)
    count_skips(next(_annotate("vep_annotated.vcf")), summary)
    assert summary.skipped == {SKIP_UNMATCHED: 1}


def test_vep_deletion_allele_is_written_without_the_shared_first_base() -> None:
    brca1 = list(_annotate("vep_annotated.vcf"))[3]
    assert brca1.unmatched == 0
    allele = brca1.alleles[0]
    assert allele.primary is not None
    assert allele.primary.transcript == "ENST00000357654.9"  # listed second, MANE Select
    assert allele.primary.hgvs_p == "ENSP00000350283.3:p.Glu23ValfsTer17"
    assert allele.primary.impact is Impact.HIGH
    assert [t.transcript for t in allele.others] == ["ENST00000471181.7"]
    assert allele.population_af == pytest.approx(1.2e-05)  # first of '1.2e-05&0'


def test_clinvar_significance_review_status_and_conditions() -> None:
    clinvar = list(_annotate("vep_annotated.vcf"))[3].clinvar
    assert clinvar is not None
    assert clinvar.significance == "Pathogenic"
    assert clinvar.tier is ClinicalSignificance.PATHOGENIC
    assert clinvar.answer_code == "LA6668-3"
    assert clinvar.review_status == "reviewed by expert panel"
    assert clinvar.stars == 3
    assert clinvar.conditions == (
        ClinVarCondition(
            "Hereditary breast ovarian cancer syndrome",
            (("MONDO", "MONDO:0003582"), ("MedGen", "C0677776")),
        ),
        ClinVarCondition(
            "Breast-ovarian cancer, familial, susceptibility to, 1",
            (("MONDO", "MONDO:0011450"), ("MedGen", "C2676676"), ("OMIM", "604370")),
        ),
    )


def test_pathogenic_likely_pathogenic_is_likely_pathogenic_with_its_text_kept() -> None:
    clinvar = list(_annotate("vep_annotated.vcf"))[4].clinvar
    assert clinvar is not None
    assert clinvar.significance == "Pathogenic/Likely pathogenic"
    assert clinvar.tier is ClinicalSignificance.LIKELY_PATHOGENIC
    assert clinvar.answer_code == "LA26332-9"
    assert clinvar.also == ("risk factor",)
    assert clinvar.review_status == "criteria provided, multiple submitters, no conflicts"
    assert clinvar.stars == 2
    assert clinvar.conditions == (ClinVarCondition("not provided", ()),)


def test_a_value_that_is_no_tier_is_kept_as_such() -> None:
    clinvar = list(_annotate("vep_annotated.vcf"))[5].clinvar
    assert clinvar is not None
    assert (clinvar.significance, clinvar.tier, clinvar.answer_code) == (
        "drug response",
        None,
        None,
    )
    assert clinvar.stars == 0
    assert clinvar.conditions == ()
    assert significance_tier("Conflicting_classifications_of_pathogenicity") is None
    assert significance_tier("not_provided") is None


def test_allele_num_assigns_entries_when_present() -> None:
    record = next(_annotate("vep_allele_num.vcf"))
    assert [a.primary.hgvs_c if a.primary else None for a in record.alleles] == [
        "ENST00000357654.9:c.68_69del",
        None,
    ]
    assert record.alleles[1].primary is not None  # allele 'C' (ACT>AC), ALLELE_NUM 2
    assert record.alleles[0].primary is not None
    assert record.alleles[0].primary.hgnc_id == "HGNC:1100"  # VEP wrote a bare 1100
    assert record.unmatched == 1  # ALLELE_NUM 3 in a record of two ALTs


def test_snpeff_annotations() -> None:
    braf, tp53, brca1 = _annotate("snpeff_annotated.vcf")
    assert braf.alleles[0].primary is not None
    assert braf.alleles[0].primary.transcript == "ENST00000288602.11"  # first listed
    assert braf.alleles[0].primary.hgvs_c == "c.1799T>A"
    assert braf.alleles[0].primary.hgvs_p == "p.Val600Glu"
    assert braf.alleles[0].primary.gene_symbol == "BRAF"
    assert len(braf.alleles[0].others) == 2
    assert [a.primary.hgvs_p for a in tp53.alleles if a.primary] == [
        "p.Arg248Gln",
        "p.Arg248Leu",
    ]
    assert tp53.unmatched == 1  # allele G
    deletion = brca1.alleles[0]
    assert deletion.primary is not None
    assert deletion.primary.hgvs_c == "c.68_69delAG"
    assert deletion.others[0].consequences == ("frameshift_variant", "splice_region_variant")
    assert brca1.clinvar is None


def test_a_csq_entry_with_the_wrong_number_of_fields_is_malformed() -> None:
    with pytest.raises(MalformedRecordError) as caught:
        list(_annotate("vep_malformed.vcf"))
    error = caught.value
    assert (error.field, error.source, error.line) == ("CSQ", "vep_malformed.vcf", 16)
    assert "CSQ entry 2 has 25 '|'-separated fields but the header declares 28" in error.message


def test_an_ann_entry_without_allele_is_malformed() -> None:
    with pytest.raises(MalformedRecordError) as caught:
        list(_annotate("snpeff_malformed.vcf"))
    assert (caught.value.field, caught.value.line) == ("ANN", 12)
    assert "ANN entry 2 names no allele" in caught.value.message


def test_a_csq_header_without_its_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vep_noformat.vcf"
    text = (DATA / "vep_allele_num.vcf").read_text()
    path.write_text(text.replace("Format: ", ""))
    with pytest.raises(MalformedRecordError, match="does not list the annotation fields"):
        AnnotationParser(_header(path), origin=path.name)


def test_a_file_without_annotations_gives_empty_alleles() -> None:
    header = _header(DATA / "snv.vcf")
    parser = AnnotationParser(header)
    assert parser.source is None
    assert parser.info_keys == ()
    variant = next(iter(cyvcf2.VCF(str(DATA / "snv.vcf"))))
    record = parser.parse(variant.REF, variant.ALT, variant.INFO)
    assert [(a.primary, a.others, a.population_af) for a in record.alleles] == [(None, (), None)]
    assert (record.clinvar, record.unmatched) == (None, 0)


def test_parser_names_the_info_keys_it_reads() -> None:
    parser = AnnotationParser(_header(DATA / "vep_annotated.vcf"))
    assert parser.info_keys == (
        "CSQ", "gnomAD_AF", "CLNSIG", "CLNREVSTAT", "CLNDN", "CLNDISDB", "GENEINFO"
    )  # fmt: skip


def test_clinvar_geneinfo_gives_the_gene_symbols() -> None:
    """GENEINFO is ``symbol:id`` pairs, '|'-separated; the disclosure policy places a call
    with no annotation in its gene by it."""
    found = parse_clinvar({"CLNSIG": "Pathogenic", "GENEINFO": "BRCA2:675|ZAR1L:646799"})
    assert found is not None and found.genes == ("BRCA2", "ZAR1L")
    benign = parse_clinvar({"CLNSIG": "Benign"})
    assert benign is not None and benign.genes == ()


def test_sequence_ontology_table() -> None:
    assert sequence_ontology("missense_variant") == ("SO:0001583", "missense_variant")
    assert sequence_ontology("frameshift_variant") == ("SO:0001589", "frameshift_variant")
    assert sequence_ontology("not_a_term") is None
    with (MAPPINGS / "sequence_ontology.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len({r["term"] for r in rows}) == len(rows)
    assert all(r["so_id"].startswith("SO:") and len(r["so_id"]) == 10 for r in rows)


def test_five_tiers_have_their_loinc_answers() -> None:
    answers = {
        "Pathogenic": (ClinicalSignificance.PATHOGENIC, "LA6668-3"),
        "Likely_pathogenic": (ClinicalSignificance.LIKELY_PATHOGENIC, "LA26332-9"),
        "Uncertain_significance": (ClinicalSignificance.UNCERTAIN_SIGNIFICANCE, "LA26333-7"),
        "Likely_benign": (ClinicalSignificance.LIKELY_BENIGN, "LA26334-5"),
        "Benign": (ClinicalSignificance.BENIGN, "LA6675-8"),
        "Benign/Likely_benign": (ClinicalSignificance.LIKELY_BENIGN, "LA26334-5"),
    }
    assert {k: significance_tier(k) for k in answers} == answers


CSQ_FORMAT = (
    "Allele|Consequence|IMPACT|SYMBOL|Gene|Feature|BIOTYPE|HGVSc|HGVSp|CANONICAL|MANE_SELECT|"
    "PICK|HGNC_ID|gnomADe_AF|gnomADg_AF"
)
_FIELD_VALUES = st.sampled_from(
    ["", "BRAF", "GENÉ", "1097", "HGNC:1097", "١٠٩٧", "²", "ENST00000288602.11", "NM_004333.6",
     "YES", "1", "c.1799T>A", "NM_1.1:c.5%3D", "p.V600E", "NP_1.1:p.Leu858%3D", "HIGH",
     "MODIFIER", "odd", "missense_variant", "frameshift_variant&splice_region_variant", "0.001",
     "1e-5&0.2", ".", " 0.5 ", "nan", "1_000", "abc"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    alleles=st.lists(st.sampled_from(["A", "T", "G", "TTTT", "-", "*"]), min_size=1, max_size=6),
    fields=st.lists(st.lists(_FIELD_VALUES, min_size=14, max_size=14), min_size=6, max_size=6),
    order=st.permutations(list(PrimaryRule)).map(lambda p: tuple(p[:2])),
)
def test_entries_read_in_c_are_what_python_reads(
    alleles: list[str], fields: list[list[str]], order: tuple[PrimaryRule, ...]
) -> None:
    """The C reader of CSQ entries (adapter/_native.c) against the Python one it stands in
    for: the same transcripts, primary choice, frequencies and unmatched count."""
    header = VcfHeader(
        samples=("S1",),
        contigs={},
        infos={"CSQ": FieldSpec(".", "String", f"Ensembl VEP. Format: {CSQ_FORMAT}")},
        meta={"VEP": "v110"},
    )
    native = AnnotationParser(header, primary_order=order)
    python = AnnotationParser(header, primary_order=order)
    python._entries = None
    raw = ",".join("|".join([a, *f]) for a, f in zip(alleles, fields, strict=False))
    records = [("C", ["A"]), ("C", ["A", "T"]), ("C", ["G", "A", "T"]), ("CA", ["C"])]
    records += [("C", ["CTTTT", "C*"]), ("C", ["CA", "*", "CT"]), ("C", ["<DEL>", "CA"])]
    for ref, alts in records:  # SNVs, and indels whose alleles VEP writes without C
        found = native.parse(ref, alts, {"CSQ": raw})
        assert repr(found) == repr(python.parse(ref, alts, {"CSQ": raw}))  # nan != nan
