"""A lab's own classification file (TSV or JSON) read into LabClassifications by variant."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import cyvcf2
import pytest

from adapter.errors import GenomeBuildError, InputError
from adapter.model import ClinicalSignificance, ClinVarCondition, GenomeBuild
from adapter.readers.annotations import parse_clinvar
from adapter.readers.classifications import read_classifications

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "classifications"
EXAMPLES = ROOT / "examples"
HEADER = (
    "build\tchromosome\tposition\tref\talt\tclassification\tcondition\tevidence\tclassified_date"
)
CFTR = "GRCh37\tchr7\t117199644\tA\tG\tLikely pathogenic\tCystic fibrosis\tPS3, PM2\t2023-09-18"
SYMBOLIC = CFTR.replace("\tA\tG", "\tA\t<DEL>")
SAME_ALLELES = CFTR.replace("\tA\tG", "\tG\tG")
JSON_ITEM = (
    '{"chromosome": "7", "position": 117199644, "ref": "A", "alt": "G", '
    '"classification": "Benign", "condition": "Cystic fibrosis", "evidence": "BA1", '
    '"classified_date": "2023-09-18"'
)


def _document(item: str) -> str:
    """A JSON file of one classification object (given without its closing brace)."""
    return f'{{"format_version": "1", "build": "GRCh37", "classifications": [{item}}}]}}'


def test_both_formats_read_to_the_same_table() -> None:
    tsv = read_classifications(DATA / "panel_grch37.tsv")
    json = read_classifications(DATA / "panel_grch37.json")
    assert tsv.classifications == json.classifications
    assert (tsv.lab, tsv.version, tsv.build) == (json.lab, json.version, json.build)
    assert tsv.build is GenomeBuild.GRCH37  # the JSON says "hg19"
    assert len(tsv.classifications) == 4
    assert tsv.label() == "Test Lab (classifications as of 2024-02-29)"
    cftr = tsv.find("7", 117199644, "A", "G")
    assert cftr is not None
    assert (cftr.tier, cftr.answer_code) == (ClinicalSignificance.LIKELY_PATHOGENIC, "LA26332-9")
    assert cftr.conditions == (
        ClinVarCondition("Cystic fibrosis", (("MONDO", "MONDO:0009061"), ("OMIM", "219700"))),
    )
    assert (cftr.evidence, cftr.classified) == ("PS3, PM2, PP3", date(2023, 9, 18))
    assert (cftr.classifier, cftr.comment, cftr.gene, cftr.hgvs_c) == (
        "A. Reviewer",
        None,
        "CFTR",
        None,
    )


def test_the_examples_hold_the_same_classifications_in_both_formats() -> None:
    tsv = read_classifications(EXAMPLES / "lab-classifications.tsv")
    json = read_classifications(EXAMPLES / "lab-classifications.json")
    assert tsv.classifications == json.classifications
    assert tsv.label() == json.label() == "Example Genomics Laboratory 2025-06"
    assert tsv.build is GenomeBuild.GRCH38
    tiers = {key[1]: c.tier for key, c in tsv.classifications.items()}
    assert tiers == {
        43124027: ClinicalSignificance.PATHOGENIC,
        43125000: ClinicalSignificance.UNCERTAIN_SIGNIFICANCE,
        7674220: ClinicalSignificance.PATHOGENIC,
        7676153: ClinicalSignificance.LIKELY_BENIGN,
    }


def test_the_examples_key_the_variants_of_the_annotated_vcf() -> None:
    """Each example row matches an allele of the VCF it documents, where the lab and ClinVar
    may disagree; its condition codes are held as ClinVar's CLNDISDB gives them."""
    table = read_classifications(EXAMPLES / "lab-classifications.tsv")
    found = {}
    for record in cyvcf2.VCF(str(ROOT / "tests" / "data" / "vcf" / "vep_annotated.vcf")):
        for alt in record.ALT:
            lab = table.find(record.CHROM, record.POS, record.REF, alt)
            if lab is not None:
                found[(record.POS, alt)] = (lab, parse_clinvar(record.INFO))
    assert set(found) == {(43124027, "A"), (43125000, "C"), (7674220, "T"), (7676153, "A")}
    lab, clinvar = found[(43125000, "C")]
    assert clinvar is not None and clinvar.tier is ClinicalSignificance.LIKELY_PATHOGENIC
    assert lab.tier is ClinicalSignificance.UNCERTAIN_SIGNIFICANCE
    lab, clinvar = found[(43124027, "A")]
    assert clinvar is not None
    assert [c.name for c in lab.conditions] == [
        "Breast-ovarian cancer, familial, susceptibility to, 1",
        "Hereditary breast ovarian cancer syndrome",
    ]
    by_name = {c.name: set(c.codes) for c in clinvar.conditions}
    for condition in lab.conditions:
        assert set(condition.codes) <= by_name[condition.name]


@pytest.mark.parametrize(
    ("chromosome", "pos", "ref", "alt", "gene"),
    [
        ("7", 117199644, "A", "G", "CFTR"),
        ("chr7", 117199644, "A", "G", "CFTR"),
        ("MT", 3243, "A", "G", "MT-TL1"),  # written "chrM" with lower-case alleles
        ("chrM", 3243, "a", "g", "MT-TL1"),
        ("X", 73040486, "G", "A", None),
        ("chr1", 69511, "A", "G", "OR4F5"),
    ],
)
def test_lookup_by_chromosome_as_the_vcf_writes_it(
    chromosome: str, pos: int, ref: str, alt: str, gene: str | None
) -> None:
    found = read_classifications(DATA / "panel_grch37.tsv").find(chromosome, pos, ref, alt)
    assert found is not None
    assert (found.gene, found.pos) == (gene, pos)


@pytest.mark.parametrize(
    ("chromosome", "pos", "ref", "alt"),
    [
        ("7", 117199644, "A", "C"),  # another ALT
        ("7", 117199645, "A", "G"),
        ("8", 117199644, "A", "G"),
        ("chrUn_gl000220", 3243, "A", "G"),
    ],
)
def test_other_alleles_have_no_classification(
    chromosome: str, pos: int, ref: str, alt: str
) -> None:
    assert read_classifications(DATA / "panel_grch37.json").find(chromosome, pos, ref, alt) is None


def test_the_tiers_answer_codes_come_from_the_mapping() -> None:
    with (ROOT / "mappings" / "clinical_significance.csv").open(newline="") as f:
        codes = {r["clnsig"].replace("_", " "): r["code"] for r in csv.DictReader(f)}
    table = read_classifications(DATA / "panel_grch37.tsv")
    tiers = {c.tier for c in table.classifications.values()}
    assert len(tiers) == 4
    for lab in table.classifications.values():
        assert lab.answer_code == codes[lab.tier]


@pytest.mark.parametrize(
    "spelling",
    ["Likely pathogenic", "likely_pathogenic", "LIKELY PATHOGENIC", "Likely  pathogenic"],
)
def test_a_tier_may_be_spelt_in_any_case_or_with_underscores(tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "c.tsv"
    path.write_text(f"{HEADER}\n{CFTR.replace('Likely pathogenic', spelling)}\n")
    (lab,) = read_classifications(path).classifications.values()
    assert lab.tier is ClinicalSignificance.LIKELY_PATHOGENIC


def test_a_repeated_variant_adds_its_condition_once(tmp_path: Path) -> None:
    path = tmp_path / "c.tsv"
    other = CFTR.replace("Cystic fibrosis", "CFTR-related disorder")
    path.write_text(f"{HEADER}\n{CFTR}\n{other}\n{CFTR.replace('chr7', '7')}\n")
    (lab,) = read_classifications(path).classifications.values()
    assert [c.name for c in lab.conditions] == ["Cystic fibrosis", "CFTR-related disorder"]


def test_the_build_must_be_the_vcfs() -> None:
    table = read_classifications(DATA / "panel_grch37.tsv")
    table.check_build(GenomeBuild.GRCH37)
    with pytest.raises(GenomeBuildError, match="on GRCh37 but the VCF is on GRCh38") as raised:
        table.check_build(GenomeBuild.GRCH38)
    assert (raised.value.source, raised.value.field) == (str(DATA / "panel_grch37.tsv"), "build")


@pytest.mark.parametrize(
    ("name", "kind", "line", "field", "needle"),
    [
        ("unknown_classification.tsv", InputError, 4, "classification", "unknown classification"),
        (
            "conflicting_duplicate.tsv",
            InputError,
            3,
            "classification",
            "Likely pathogenic at line 2",
        ),
        ("missing_column.tsv", InputError, 1, "classified_date", "missing required column"),
        ("bad_position.tsv", InputError, 2, "position", "bad position '117,199,644'"),
        ("bad_date.tsv", InputError, 2, "classified_date", "bad date '18/09/2023'"),
        ("unknown_build.tsv", GenomeBuildError, 2, "build", "unknown genome build 'NCBI36'"),
        ("mixed_build.tsv", GenomeBuildError, 3, "build", "a file holds one build"),
        ("invalid.json", InputError, 5, None, "not valid JSON"),
        ("bad_position.json", InputError, None, "/classifications/1/position", "bad position"),
        (
            "unknown_classification.json",
            InputError,
            None,
            "/classifications/0/classification",
            "'Pathogenic/Likely pathogenic'",
        ),
        ("unknown_build.json", GenomeBuildError, None, "/build", "'T2T-CHM13'"),
    ],
)
def test_a_bad_file_names_its_place_and_field(
    name: str, kind: type[InputError], line: int | None, field: str | None, needle: str
) -> None:
    path = DATA / name
    with pytest.raises(kind, match=needle) as raised:
        read_classifications(path)
    error = raised.value
    assert type(error) is kind
    assert (error.source, error.line, error.field) == (str(path), line, field)


@pytest.mark.parametrize(
    ("text", "line", "field", "needle"),
    [
        (f"{HEADER}\n{CFTR.replace('chr7', 'chr23')}\n", 2, "chromosome", "'chr23' is not 1-22"),
        (f"{HEADER}\n{SYMBOLIC}\n", 2, "alt", "no allele"),
        (f"{HEADER}\n{SAME_ALLELES}\n", 2, "alt", "is the REF"),
        (f"{HEADER}\n{CFTR.replace('117199644', '0')}\n", 2, "position", "bad position '0'"),
        (f"{HEADER}\n{CFTR.replace('2023-09-18', '2023-02-30')}\n", 2, "classified_date", "date"),
        (f"{HEADER}\n{CFTR.replace('PS3, PM2', '')}\n", 2, "evidence", "missing or empty"),
        (f"{HEADER}\n{CFTR}\n{CFTR.replace('PS3, PM2', 'PS3')}\n", 3, "evidence", "line 2"),
        (f"{HEADER}\n{CFTR}\tx\n", 2, None, "10 columns, the header has 9"),
        (f"{HEADER}\tnotes\n", 1, "notes", "unknown column 'notes'"),
        (f"{HEADER}\tgene\tgene\n", 1, "gene", "column 'gene' named twice"),
        (f"{HEADER}\tcondition_codes\n{CFTR}\tOMIM 219700\n", 2, "condition_codes", "DATABASE:ID"),
        (f"# format_version: 2\n{HEADER}\n{CFTR}\n", 1, "format_version", "'2'"),
        (f"# lab: Test Lab\n{HEADER}\n", None, None, "no classifications"),
        ("# lab: Test Lab\n", None, None, "no header row"),
    ],
)
def test_a_bad_tsv_row_names_its_line_and_column(
    tmp_path: Path, text: str, line: int | None, field: str | None, needle: str
) -> None:
    path = tmp_path / "c.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as raised:
        read_classifications(path)
    assert (raised.value.source, raised.value.line, raised.value.field) == (str(path), line, field)


@pytest.mark.parametrize(
    ("text", "field", "needle"),
    [
        ("[]", None, "one object"),
        (
            '{"format_version": "1", "build": "GRCh37", "classifications": [7]}',
            "/classifications/0",
            "an object",
        ),
        (
            '{"format_version": "1", "build": "GRCh37", "classifications": {}}',
            "/classifications",
            "list",
        ),
        (
            '{"build": "GRCh37", "classifications": []}',
            "/format_version",
            "format_version missing",
        ),
        ('{"format_version": "1", "build": "GRCh37", "classifications": []}', None, "no classif"),
        ('{"format_version": "1", "build": "GRCh37", "notes": 1}', "/notes", "key 'notes'"),
        ('{"format_version": "1", "build": 38}', "/build", "unknown genome build '38'"),
        (
            _document(JSON_ITEM.replace('"evidence": "BA1", ', "")),
            "/classifications/0/evidence",
            "the evidence is missing",
        ),
        (_document(f'{JSON_ITEM}, "build": "GRCh37"'), "/classifications/0", "key 'build'"),
        (
            _document(f'{JSON_ITEM}, "condition_codes": "OMIM:219700"'),
            "/classifications/0/condition_codes",
            "must be a list",
        ),
        (
            _document(JSON_ITEM.replace("117199644", "true")),
            "/classifications/0/position",
            "bad position True",
        ),
        (_document(f'{JSON_ITEM}, "gene": 7'), "/classifications/0/gene", "gene must be text"),
        (_document(JSON_ITEM.replace('"BA1"', "null")), "/classifications/0/evidence", "missing"),
    ],
)
def test_a_bad_json_names_its_pointer(tmp_path: Path, text: str, field: str, needle: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as raised:
        read_classifications(path)
    assert (raised.value.source, raised.value.line, raised.value.field) == (str(path), None, field)


def test_the_documents_the_json_errors_break_are_read(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(_document(f'{JSON_ITEM}, "condition_codes": ["HP:0002110"], "comment": null'))
    (lab,) = read_classifications(path).classifications.values()
    assert lab.tier is ClinicalSignificance.BENIGN
    assert lab.conditions[0].codes == (("Human_Phenotype_Ontology", "HP:0002110"),)
    assert lab.comment is None


def test_an_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        read_classifications(tmp_path / "absent.tsv")
