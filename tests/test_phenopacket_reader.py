"""The Phenopacket v2 reader: both examples read to the report they state, each bad input names
its JSON path, no identifier reaches an error message, and nothing but PhenopacketError escapes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import phenopackets as pp
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.code_systems import curie_term
from adapter.errors import PhenopacketError
from adapter.model import (
    ClinicalSignificance,
    CodedTerm,
    GenomeBuild,
    LabReport,
    PatientRef,
    ReportStatus,
    Sex,
    Zygosity,
)
from adapter.readers.phenopacket import read_phenopacket

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "phenopackets"
BAD = Path(__file__).resolve().parent / "data" / "phenopackets"
SYSTEM = "urn:oid:1.2.3.4.5.6.7"  # the deployment's identifier system for subject ids
SUBJECT_IDS = ("P-004711", "P-008812")
HPO = "http://human-phenotype-ontology.org"
MONDO = "http://purl.obolibrary.org/obo/mondo.owl"
OMIM = "https://www.omim.org"
CLINVAR = "http://www.ncbi.nlm.nih.gov/clinvar"
DBSNP = "http://www.ncbi.nlm.nih.gov/projects/SNP"
VARIANT = ("interpretations", 0, "diagnosis", "genomicInterpretations")


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return document


def read(document: dict[str, Any] | str | bytes, source: str = "test.json") -> LabReport:
    data = document if isinstance(document, str | bytes) else json.dumps(document)
    return read_phenopacket(data, source=source, subject_system=SYSTEM)


def put(document: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the element at ``path`` replaced."""
    changed = copy.deepcopy(document)
    parent: Any = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


def descriptor_of(document: dict[str, Any], index: int) -> dict[str, Any]:
    genomic: dict[str, Any] = document["interpretations"][0]["diagnosis"]["genomicInterpretations"][
        index
    ]
    descriptor: dict[str, Any] = genomic["variantInterpretation"]["variationDescriptor"]
    return descriptor


def error_of(document: dict[str, Any] | str | bytes) -> PhenopacketError:
    with pytest.raises(PhenopacketError) as caught:
        read(document)
    return caught.value


# ---- the examples ------------------------------------------------------------------------


def test_de_novo_example_reads_to_its_report() -> None:
    report = read_phenopacket(
        (EXAMPLES / "de-novo.json").read_bytes(), source="de-novo.json", subject_system=SYSTEM
    )

    assert report.source_format == "GA4GH Phenopacket 2.0"
    assert report.report_key == "RD-2024-0117"
    assert report.patient == PatientRef(identifier_system=SYSTEM, identifier_value="P-004711")
    assert report.status is ReportStatus.FINAL
    assert report.sex is Sex.FEMALE
    assert report.birth_date == date(2021, 3, 14)
    assert report.issued == datetime(2024, 6, 3, 9, 12, tzinfo=UTC)
    assert report.build is GenomeBuild.GRCH38
    assert report.conclusion is not None and report.conclusion.startswith("A de novo")
    assert report.notes == ()
    # MONDO:0012812 is both a stated disease and the diagnosis: carried once
    assert report.diagnoses == (
        CodedTerm(OMIM, "612164", "Developmental and epileptic encephalopathy 4"),
        CodedTerm(MONDO, "MONDO:0012812", "developmental and epileptic encephalopathy 4"),
    )
    assert [t.code for t in report.phenotypes] == [
        "HP:0012469",
        "HP:0010851",
        "HP:0012736",
        "HP:0006829",
        "HP:0001344",
    ]
    assert {t.system for t in report.phenotypes} == {HPO}
    assert report.excluded_phenotypes == (CodedTerm(HPO, "HP:0000252", "Microcephaly"),)

    (variant,) = report.variants
    assert variant.key == "var-STXBP1-c.1217G>A"
    assert variant.where == "interpretations[0].diagnosis.genomicInterpretations[0]"
    assert variant.display_name == "STXBP1 p.(Arg406His)"
    consequence = variant.consequence
    assert consequence is not None
    assert consequence.gene_symbol == "STXBP1"
    assert consequence.hgnc_id == "HGNC:11444"
    assert consequence.gene_id is None
    assert consequence.transcript == "NM_001032221.6"
    assert consequence.hgvs_c == "NM_001032221.6:c.1217G>A"
    assert consequence.hgvs_p == "NP_001027392.1:p.(Arg406His)"
    assert variant.genomic_hgvs == "NC_000009.12:g.127675910G>A"
    call = variant.call
    assert call is not None
    assert (call.chrom, call.chromosome, call.pos, call.ref, call.alt) == (
        "chr9",
        "9",
        127675910,
        "G",
        "A",
    )
    assert (call.genotype, call.alt_index, call.filters, call.quality) == ("", 1, (), 812.0)
    assert call.record_id is None
    assert call.zygosity is Zygosity.HETEROZYGOUS
    assert variant.zygosity is Zygosity.HETEROZYGOUS
    classification = variant.classification
    assert classification is not None
    assert classification.text == "PATHOGENIC"
    assert classification.tier is ClinicalSignificance.PATHOGENIC
    assert classification.answer_code == "LA6668-3"
    assert classification.conditions == (
        CodedTerm(MONDO, "MONDO:0012812", "developmental and epileptic encephalopathy 4"),
    )
    assert (variant.actionable, variant.therapies) == (False, ())
    assert variant.notes == (
        "Interpretation status CAUSATIVE: interpreted to be causative of the diagnosis.",
        "Absent from both parents in trio exome sequencing (parentage confirmed): de novo.",
    )


def test_de_novo_in_free_text_is_no_inheritance() -> None:
    """Phenopackets v2 encode no de novo status; the description saying so stays a note."""
    (variant,) = read(example("de-novo.json")).variants

    assert variant.inheritance is None
    assert any("de novo" in note for note in variant.notes)


def test_recessive_example_reads_to_its_report() -> None:
    report = read(example("recessive.json"))

    assert report.report_key == "RD-2024-0342"
    assert report.patient == PatientRef(identifier_system=SYSTEM, identifier_value="P-008812")
    assert (report.sex, report.birth_date) == (Sex.MALE, date(2019, 8, 2))
    assert report.issued == datetime(2024, 6, 18, 14, 30, tzinfo=UTC)
    assert report.build is GenomeBuild.GRCH38  # "hg38" in the packet
    assert report.diagnoses == (
        CodedTerm(OMIM, "219700", "Cystic fibrosis"),
        CodedTerm(MONDO, "MONDO:0009061", "cystic fibrosis"),
    )
    assert [t.code for t in report.phenotypes] == [
        "HP:0012236",
        "HP:0001738",
        "HP:0002205",
        "HP:0001508",
    ]
    assert [t.code for t in report.excluded_phenotypes] == ["HP:0004401"]

    f508del, g551d = report.variants
    assert (f508del.key, g551d.key) == ("var-CFTR-F508del", "var-CFTR-G551D")
    for variant in (f508del, g551d):
        assert variant.zygosity is Zygosity.HETEROZYGOUS
        assert variant.consequence is not None
        assert variant.consequence.gene_symbol == "CFTR"
        assert variant.consequence.transcript == "NM_000492.4"
        assert variant.classification is not None
        assert variant.classification.tier is ClinicalSignificance.PATHOGENIC
        assert variant.classification.conditions == (
            CodedTerm(MONDO, "MONDO:0009061", "cystic fibrosis"),
        )
        assert variant.notes[0] == (
            "Interpretation status CONTRIBUTORY: interpreted to be related to the diagnosis."
        )
    # syntax "hgvs": told apart by the c./p. part
    assert f508del.consequence is not None
    assert f508del.consequence.hgvs_c == "NM_000492.4:c.1521_1523del"
    assert f508del.consequence.hgvs_p == "NP_000483.3:p.(Phe508del)"
    assert f508del.genomic_hgvs is None
    assert f508del.call is not None
    assert (f508del.call.chrom, f508del.call.chromosome, f508del.call.pos) == ("7", "7", 117559590)
    assert (f508del.call.ref, f508del.call.alt) == ("ATCT", "A")
    assert f508del.call.record_id == "rs113993960"
    assert f508del.variation_codes == (
        CodedTerm(CLINVAR, "7105", None),
        CodedTerm(DBSNP, "rs113993960", None),
    )
    assert (f508del.actionable, f508del.therapies) == (False, ())
    assert g551d.genomic_hgvs == "NC_000007.14:g.117587806G>A"
    assert g551d.call is not None and g551d.call.pos == 117587806
    # the treatment aimed at cystic fibrosis, the variant's diagnosis
    assert g551d.actionable
    assert g551d.therapies == (curie_term("CHEBI:66901", "ivacaftor"),)
    assert report.notes == ()


@pytest.mark.parametrize("name", ["de-novo.json", "recessive.json"])
def test_a_packet_round_tripped_through_message_to_json_reads_the_same(name: str) -> None:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    again = json_format.MessageToJson(json_format.Parse(text, pp.Phenopacket()))

    assert again != text
    assert read(again) == read(text)


def test_bytes_with_a_byte_order_mark_read_as_text() -> None:
    text = (EXAMPLES / "de-novo.json").read_text(encoding="utf-8")

    assert read(b"\xef\xbb\xbf" + text.encode()) == read(text)


# ---- mapping decisions ---------------------------------------------------------------------


def test_therapies_are_the_treatments_aimed_at_the_variants_diagnosis() -> None:
    """Matched by the treatment target's id: OMIM:219700 is not the diagnosis MONDO:0009061,
    and an action without a target is aimed at nothing."""
    document = example("recessive.json")
    action = document["medicalActions"][0]
    elsewhere = put(action, ("treatmentTarget",), {"id": "OMIM:219700", "label": "Cystic fibrosis"})
    untargeted = {"treatment": action["treatment"]}
    document["medicalActions"] = [elsewhere, untargeted]

    g551d = read(document).variants[1]

    assert g551d.actionable
    assert g551d.therapies == ()


def test_rejected_and_gene_level_interpretations_are_counted_not_converted() -> None:
    document = put(example("recessive.json"), (*VARIANT, 0, "interpretationStatus"), "REJECTED")
    gene_level = {
        "subjectOrBiosampleId": "P-008812",
        "interpretationStatus": "CANDIDATE",
        "gene": {"valueId": "HGNC:1884", "symbol": "CFTR"},
    }
    document["interpretations"][0]["diagnosis"]["genomicInterpretations"].append(gene_level)

    report = read(document)

    assert [v.key for v in report.variants] == ["var-CFTR-G551D"]
    assert report.notes == (
        "Variants the lab rejected as unrelated to the diagnosis: 1.",
        "Gene-level interpretations without a variant: 1.",
    )


@pytest.mark.parametrize(
    ("geno", "zygosity"),
    [
        ("GENO:0000135", Zygosity.HETEROZYGOUS),
        ("GENO:0000402", Zygosity.HETEROZYGOUS),
        ("GENO:0000136", Zygosity.HOMOZYGOUS),
        ("GENO:0000134", Zygosity.HEMIZYGOUS),
        ("GENO:0000604", Zygosity.HEMIZYGOUS),
        ("GENO:0000605", Zygosity.HEMIZYGOUS),
        ("GENO:0000602", Zygosity.HOMOPLASMIC),
        ("GENO:0000603", Zygosity.HETEROPLASMIC),
        ("GENO:0000137", None),  # unspecified zygosity
    ],
)
def test_allelic_state_as_zygosity(geno: str, zygosity: Zygosity | None) -> None:
    path = (*VARIANT, 0, "variantInterpretation", "variationDescriptor", "allelicState")
    (variant,) = read(put(example("de-novo.json"), path, {"id": geno})).variants

    assert variant.zygosity is zygosity
    assert variant.call is not None and variant.call.zygosity is zygosity


def test_not_provided_classification_gives_none() -> None:
    path = (*VARIANT, 0, "variantInterpretation", "acmgPathogenicityClassification")
    (variant,) = read(put(example("de-novo.json"), path, "NOT_PROVIDED")).variants

    assert variant.classification is None


def test_likely_pathogenic_classification_has_its_loinc_answer() -> None:
    path = (*VARIANT, 0, "variantInterpretation", "acmgPathogenicityClassification")
    (variant,) = read(put(example("de-novo.json"), path, "LIKELY_PATHOGENIC")).variants

    assert variant.classification is not None
    assert variant.classification.tier is ClinicalSignificance.LIKELY_PATHOGENIC
    assert variant.classification.answer_code == "LA26332-9"


def test_an_hgvs_expression_alone_names_a_variant() -> None:
    document = example("de-novo.json")
    del descriptor_of(document, 0)["vcfRecord"]

    (variant,) = read(document).variants

    assert variant.call is None
    assert variant.genomic_hgvs == "NC_000009.12:g.127675910G>A"


def test_structural_type_is_the_change_type() -> None:
    path = (*VARIANT, 0, "variantInterpretation", "variationDescriptor", "structuralType")
    change = {"id": "SO:0001822", "label": "inframe_deletion"}
    f508del = read(put(example("recessive.json"), path, change)).variants[0]

    assert f508del.change_type == curie_term("SO:0001822", "inframe_deletion")


@pytest.mark.parametrize(
    ("sex", "expected"),
    [("MALE", Sex.MALE), ("FEMALE", Sex.FEMALE), ("OTHER_SEX", Sex.UNKNOWN), (None, Sex.UNKNOWN)],
)
def test_subject_sex(sex: str | None, expected: Sex) -> None:
    document = put(example("de-novo.json"), ("subject", "sex"), sex)
    if sex is None:
        del document["subject"]["sex"]

    assert read(document).sex is expected


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("invalid-json.json", None),
        ("not-a-phenopacket.json", "resourceType"),
        ("v1.json", "metaData.phenopacketSchemaVersion"),
        ("no-subject-id.json", "subject.id"),
        (
            "unknown-enum.json",
            "interpretations[0].diagnosis.genomicInterpretations[1]"
            ".variantInterpretation.acmgPathogenicityClassification",
        ),
        (
            "unnamed-variant.json",
            "interpretations[0].diagnosis.genomicInterpretations[0]"
            ".variantInterpretation.variationDescriptor",
        ),
    ],
)
def test_bad_input_names_its_json_path(name: str, field: str | None) -> None:
    with pytest.raises(PhenopacketError) as caught:
        read_phenopacket((BAD / name).read_bytes(), source=name, subject_system=SYSTEM)

    error = caught.value
    assert error.field == field
    assert error.source == name
    assert not any(subject_id in str(error) for subject_id in SUBJECT_IDS)


def test_invalid_json_names_its_line() -> None:
    error = error_of((BAD / "invalid-json.json").read_bytes())

    assert error.line == 10
    assert "not valid JSON" in error.message


def test_unknown_enum_names_the_allowed_values() -> None:
    error = error_of((BAD / "unknown-enum.json").read_bytes())

    assert "LIKELY_PATHOGENIC" in error.message
    assert "PROBABLY_PATHOGENIC" not in error.message


def test_v1_packet_without_a_version_names_a_v1_only_field() -> None:
    document = json.loads((BAD / "v1.json").read_text(encoding="utf-8"))
    del document["metaData"]["phenopacketSchemaVersion"]

    assert error_of(document).field == "phenotypicFeatures[0].negated"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1, 2]", "a JSON list, not an object"),
        (b'{"id": "a", "id": "b"}', "names one key twice"),
        (b'{"id": "\xff"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_undecodable_or_non_object_json_is_refused(data: bytes, message: str) -> None:
    error = error_of(data)

    assert message in error.message
    assert error.field is None


def test_missing_version_is_refused() -> None:
    document = example("de-novo.json")
    del document["metaData"]["phenopacketSchemaVersion"]

    assert error_of(document).field == "metaData.phenopacketSchemaVersion"


@pytest.mark.parametrize(
    ("change", "value", "field"),
    [
        ("genomeAssembly", "", "vcfRecord.genomeAssembly"),
        ("genomeAssembly", "CHM13", "vcfRecord.genomeAssembly"),
        ("chrom", "chrUn_KI270742v1", "vcfRecord.chrom"),
        ("pos", "141213432", "vcfRecord.pos"),  # beyond chromosome 9 of GRCh38
        ("ref", "G,T", "vcfRecord.ref"),
        ("alt", "<DEL>", "vcfRecord.alt"),
        ("qual", "high", "vcfRecord.qual"),
    ],
)
def test_bad_vcf_record_names_its_field(change: str, value: str, field: str) -> None:
    document = example("de-novo.json")
    descriptor_of(document, 0)["vcfRecord"][change] = value

    error = error_of(document)

    prefix = "interpretations[0].diagnosis.genomicInterpretations[0]"
    assert error.field == f"{prefix}.variantInterpretation.variationDescriptor.{field}"


def test_two_builds_in_one_report_are_refused() -> None:
    document = example("recessive.json")
    descriptor_of(document, 1)["vcfRecord"]["genomeAssembly"] = "GRCh37"

    error = error_of(document)

    assert error.field is not None and error.field.endswith(
        "genomicInterpretations[1].variantInterpretation.variationDescriptor"
        ".vcfRecord.genomeAssembly"
    )
    assert "one build per report" in error.message


def test_two_variants_with_one_descriptor_id_are_refused() -> None:
    document = example("recessive.json")
    descriptor_of(document, 1)["id"] = "var-CFTR-F508del"

    error = error_of(document)

    assert error.field == (
        "interpretations[0].diagnosis.genomicInterpretations[1]"
        ".variantInterpretation.variationDescriptor.id"
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("subject", "dateOfBirth"), "subject.dateOfBirth"),
        (("subject", "sex"), "subject.sex"),
        (("metaData", "created"), "metaData.created"),
        (
            (*VARIANT, 0, "variantInterpretation", "variationDescriptor", "vcfRecord", "pos"),
            "interpretations[0].diagnosis.genomicInterpretations[0]"
            ".variantInterpretation.variationDescriptor.vcfRecord.pos",
        ),
        (("phenotypicFeatures", 2), "phenotypicFeatures[2]"),
        (("phenotypicFeatures",), "phenotypicFeatures"),
    ],
)
def test_json_format_messages_quoting_the_value_are_not_passed_on(
    path: tuple[str | int, ...], field: str
) -> None:
    """json_format's ParseError quotes the value it refused; here the value is the subject's
    identifier, which must not reach the message (messages are logged)."""
    error = error_of(put(example("de-novo.json"), path, "P-004711"))

    assert error.field == field
    assert "P-004711" not in str(error)


def test_a_key_that_is_no_field_name_is_not_repeated() -> None:
    document = put(example("de-novo.json"), ("subject", "P-004711 Jane Doe"), "x")

    error = error_of(document)

    assert error.field == "subject.<key>"
    assert "P-004711" not in str(error)


# ---- anything else raises PhenopacketError -------------------------------------------------


def field_names(descriptor: Any, seen: set[str] | None = None) -> Iterator[str]:
    """Every JSON field name of a message and the messages it holds."""
    seen = set() if seen is None else seen
    if descriptor.full_name in seen:
        return
    seen.add(descriptor.full_name)
    for field in descriptor.fields:
        yield field.json_name
        if field.message_type is not None:
            yield from field_names(field.message_type, seen)


FIELD_NAMES = sorted(set(field_names(pp.Phenopacket.DESCRIPTOR)))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every element below ``value``."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*prefix, key)
        if isinstance(item, dict | list):
            yield from paths(item, (*prefix, key))


DE_NOVO = example("de-novo.json")
RECESSIVE = example("recessive.json")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), JSON, max_size=5))
def test_arbitrary_json_objects_raise_only_phenopacket_error(document: dict[str, Any]) -> None:
    try:
        report = read(document)
    except PhenopacketError as error:
        assert "Failed to parse" not in error.message  # json_format's words, quoting values
    else:
        assert report.report_key


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([DE_NOVO, RECESSIVE]).flatmap(
        lambda document: st.tuples(st.just(document), st.sampled_from(list(paths(document))))
    ),
    JSON,
)
def test_examples_with_any_element_replaced_raise_only_phenopacket_error(
    case: tuple[dict[str, Any], tuple[str | int, ...]], value: Any
) -> None:
    document, path = case
    try:
        report = read(put(document, path, value))
    except PhenopacketError as error:
        assert "Failed to parse" not in error.message
        assert not any(subject_id in str(error) for subject_id in SUBJECT_IDS)
    else:
        assert report.patient.identifier_system == SYSTEM
