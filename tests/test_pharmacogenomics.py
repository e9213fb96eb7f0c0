"""Pharmacogenomic calls (PharmCAT 3 JSON or the TSV) become genotype and haplotype Observations,
therapeutic implications and medication-recommendation Tasks for the CPIC rules they meet."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import InputError
from adapter.fhir.pharmacogenomics import (
    RECOMMENDED_ACTION,
    RXNORM,
    PharmacogenomicResources,
    pharmacogenomic_resources,
)
from adapter.model import AnalysisContext, GenomeBuild, PatientRef
from adapter.readers.pharmacogenomics import read_pharmacogenomics
from adapter.validation import Validator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [
    ROOT / "examples" / "pgx" / "pharmcat.report.json",
    ROOT / "examples" / "pgx" / "calls.tsv",
]
DATA = Path(__file__).resolve().parent / "data" / "pgx"
CTX = AnalysisContext(
    patient=PatientRef(id="p-1"),
    build=GenomeBuild.GRCH38,
    sample="NA-PGX-0001",
    report_key="pgx-report-1",
    specimen_id="blood-1",
    performer="Organization/lab-1",
)
ALTERNATIVE, DECREASE = "LA26421-0", "LA26422-8"
#: drug -> (genes the implication derives from, RxNorm, start of CPIC's text, Task code)
EXPECTED = {
    "clopidogrel": (
        ["CYP2C19"],
        "32968",
        "Avoid standard dose (75 mg) clopidogrel if possible.",
        ALTERNATIVE,
    ),
    "codeine": (
        ["CYP2D6"],
        "2670",
        "Use codeine label recommended age- or weight-specific dosing. If no response",
        None,
    ),
    "tramadol": (
        ["CYP2D6"],
        "10689",
        "Use tramadol label recommended age- or weight-specific dosing. If no response",
        None,
    ),
    "citalopram": (["CYP2C19"], "2556", "Initiate therapy with recommended starting dose", None),
    "sertraline": (["CYP2C19"], "36437", "Initiate therapy with recommended starting dose", None),
    "simvastatin": (
        ["SLCO1B1"],
        "36567",
        "Prescribe an alternative statin depending on the desired potency. If simvastatin",
        ALTERNATIVE,
    ),
    "warfarin": (
        ["CYP2C9", "VKORC1"],
        "11289",
        "Warfarin recommendation does not follow simple diplotype to phenotype translation",
        None,
    ),
    "azathioprine": (
        ["TPMT", "NUDT15"],
        "1256",
        "Start with reduced starting doses (30%-80% of normal dose)",
        DECREASE,
    ),
    "thioguanine": (
        ["TPMT", "NUDT15"],
        "10485",
        "Start with reduced doses (50% to 80% of normal dose)",
        DECREASE,
    ),
    "capecitabine": (["DPYD"], "194000", "Reduce starting dose by 50%", DECREASE),
}


def convert(path: Path, ctx: AnalysisContext = CTX) -> PharmacogenomicResources:
    return pharmacogenomic_resources(ctx, read_pharmacogenomics(path))


def by_profile(found: PharmacogenomicResources, name: str) -> list[dict[str, Any]]:
    return [r for r in found.results + found.tasks if r["meta"]["profile"][0].endswith(f"/{name}")]


def gene_of(genotype: dict[str, Any]) -> str:
    """The gene studied: its HGNC display, or the text of a gene without an HGNC row."""
    value = genotype["component"][0]["valueCodeableConcept"]
    gene: str = value["coding"][0]["display"] if "coding" in value else value["text"]
    return gene


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_listed_pair_gets_its_cpic_recommendation(path: Path) -> None:
    found = convert(path)
    implications = {r["id"]: r for r in by_profile(found, "therapeutic-implication")}
    genotypes = {r["id"]: gene_of(r) for r in by_profile(found, "genotype")}
    tasks = {t["input"][0]["valueCodeableConcept"]["coding"][0]["display"]: t for t in found.tasks}
    assert set(tasks) == set(EXPECTED)
    for drug, (genes, rxnorm, text, action) in EXPECTED.items():
        task = tasks[drug]
        assert task["input"][0]["valueCodeableConcept"]["coding"][0] == {
            "system": RXNORM,
            "code": rxnorm,
            "display": drug,
        }
        assert task["description"].startswith(f"{drug}: {text}")
        assert "https://cpicpgx.org/guidelines/" in task["description"]
        assert task.get("code", {}).get("coding", [{}])[0].get("code") == action
        assert task["for"] == {"reference": "Patient/p-1"}
        implication = implications[task["reasonReference"]["reference"].removeprefix("urn:uuid:")]
        derived = [
            genotypes[d["reference"].removeprefix("urn:uuid:")] for d in implication["derivedFrom"]
        ]
        assert derived == genes
        medication = implication["component"][-1]["valueCodeableConcept"]["coding"][0]
        assert medication["code"] == rxnorm


@pytest.mark.parametrize(
    "path", [*EXAMPLES, DATA / "pharmcat_by_source.report.json"], ids=lambda p: p.name
)
def test_every_resource_validates_with_zero_errors(path: Path, validator: Validator) -> None:
    found = convert(path)
    assert found.results and found.tasks
    for resource in found.results + found.tasks:
        errors = [i for i in validator.validate(resource) if i.severity == "error"]
        assert errors == [], (resource["meta"]["profile"][0], errors)


def test_genotype_haplotypes_and_phenotype_follow_the_ig_examples() -> None:
    found = convert(EXAMPLES[0])
    ids = {r["id"]: r for r in found.results}
    genotype = next(g for g in by_profile(found, "genotype") if gene_of(g) == "CYP2C19")
    assert genotype["code"]["coding"][0]["code"] == "84413-4"
    assert genotype["valueCodeableConcept"] == {"text": "CYP2C19 *1/*2"}
    assert genotype["component"][0]["valueCodeableConcept"]["coding"][0]["code"] == "HGNC:2621"
    assert genotype["specimen"] == {"reference": "Specimen/blood-1"}
    haplotypes = [ids[d["reference"].removeprefix("urn:uuid:")] for d in genotype["derivedFrom"]]
    assert [h["code"]["coding"][0]["code"] for h in haplotypes] == ["84414-2", "84414-2"]
    assert [h["valueCodeableConcept"]["text"] for h in haplotypes] == ["CYP2C19 *1", "CYP2C19 *2"]
    phenotypes = {
        part["valueCodeableConcept"]["text"]: part["valueCodeableConcept"].get("coding")
        for r in by_profile(found, "therapeutic-implication")
        for part in r["component"][:-1]
    }
    assert phenotypes["CYP2C19 Intermediate Metabolizer"] == [
        {"system": "http://loinc.org", "code": "LA10317-8", "display": "Intermediate metabolizer"}
    ]
    assert phenotypes["SLCO1B1 Decreased Function"][0]["code"] == "LA25395-7"
    assert (
        phenotypes["DPYD Intermediate Metabolizer (activity score 1.5)"][0]["code"] == "LA10317-8"
    )
    no_phenotype = "VKORC1 rs9923231 reference (C)/rs9923231 variant (T): no phenotype assigned"
    assert phenotypes[no_phenotype] is None


def test_a_cpic_term_without_a_loinc_answer_is_sent_as_text(tmp_path: Path) -> None:
    tsv = tmp_path / "calls.tsv"
    tsv.write_text(
        "gene\tdiplotype\tphenotype\tactivity_score\nSLCO1B1\t*1/*9\tPossible Decreased Function\n",
        encoding="utf-8",
    )
    (implication,) = by_profile(convert(tsv), "therapeutic-implication")
    assert implication["component"][0]["valueCodeableConcept"] == {
        "text": "SLCO1B1 Possible Decreased Function"
    }


def test_pharmcat_report_and_tsv_carry_the_same_calls() -> None:
    pharmcat, tsv = (read_pharmacogenomics(p) for p in EXAMPLES)
    assert (pharmcat.source, pharmcat.version, pharmcat.data_version) == (
        "PharmCAT",
        "3.2.0",
        "2025-10-01-00-00",
    )
    assert (tsv.source, tsv.version) == ("TSV", None)
    tsv_genes = {c.diplotype.gene for c in tsv.calls}
    assert {c for c in pharmcat.calls if c.diplotype.gene in tsv_genes} == {
        replace(c, line=None) for c in tsv.calls
    }


def test_another_pharmcat_major_version_is_refused_naming_both() -> None:
    with pytest.raises(InputError) as raised:
        read_pharmacogenomics(DATA / "pharmcat_v2.report.json")
    assert raised.value.field == "pharmcatVersion"
    assert "'2.15.5'" in raised.value.message and "3.x" in raised.value.message


def test_a_json_that_is_no_pharmcat_report_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"genes": {}}), encoding="utf-8")
    with pytest.raises(InputError, match="pharmcatVersion"):
        read_pharmacogenomics(path)


@pytest.mark.parametrize(
    ("name", "line", "field"),
    [
        ("bad_diplotype.tsv", 2, "diplotype"),
        ("bad_activity_score.tsv", 2, "activity_score"),
        ("bad_header.tsv", 1, None),
        ("duplicate_gene.tsv", 3, None),
    ],
)
def test_a_malformed_tsv_names_its_line_and_field(name: str, line: int, field: str | None) -> None:
    with pytest.raises(InputError) as raised:
        read_pharmacogenomics(DATA / name)
    assert (raised.value.line, raised.value.field) == (line, field)
    assert raised.value.source == str(DATA / name)


def test_a_file_of_comments_alone_is_neither_format(tmp_path: Path) -> None:
    path = tmp_path / "calls.tsv"
    path.write_text("# lab: none\n\n")
    with pytest.raises(InputError, match="neither a PharmCAT JSON report nor a TSV") as raised:
        read_pharmacogenomics(path)
    assert raised.value.line is None


def test_calls_no_rule_meets_are_counted_by_reason_not_dropped() -> None:
    found = convert(DATA / "not_in_table.tsv")
    assert found.skipped == {
        "phenotype_not_in_table": 1,  # DPYD poor metabolizer: no verified row
        "partner_gene_not_called": 1,  # TPMT without NUDT15
        "gene_not_in_table": 1,  # CYP3A5
    }
    assert found.tasks == []
    assert sorted(gene_of(g) for g in by_profile(found, "genotype")) == ["CYP3A5", "DPYD", "TPMT"]


@pytest.mark.parametrize(
    ("name", "skipped", "genes"),
    [
        (
            "pharmcat_ambiguous.report.json",
            {"ambiguous_diplotype": 1, "partner_gene_not_called": 1},
            ["TPMT"],
        ),
        ("pharmcat_by_source.report.json", {}, ["CYP2C19"]),
    ],
)
def test_pharmcat_gene_reports_are_read_or_counted(
    name: str, skipped: dict[str, int], genes: list[str]
) -> None:
    found = convert(DATA / name)
    assert found.skipped == skipped
    assert [gene_of(g) for g in by_profile(found, "genotype")] == genes


def test_the_example_report_counts_its_uncalled_and_unknown_genes() -> None:
    found = convert(EXAMPLES[0])
    assert found.skipped == {"no_call": 1, "gene_not_in_table": 1}  # CYP2B6, CYP3A5


def test_a_poor_metabolizer_meets_only_the_rules_the_table_holds() -> None:
    found = convert(DATA / "pharmcat_by_source.report.json")  # CYP2C19 *2/*2
    codes = {
        t["input"][0]["valueCodeableConcept"]["coding"][0]["display"]: t["code"]["coding"][0][
            "code"
        ]
        for t in found.tasks
    }
    assert codes == {
        "citalopram": DECREASE,
        "sertraline": DECREASE,
    }  # no verified clopidogrel PM row


def test_ids_are_stable_per_report_and_differ_between_reports() -> None:
    first, again = convert(EXAMPLES[0]), convert(EXAMPLES[0])
    other = convert(EXAMPLES[0], AnalysisContext(PatientRef(id="p-2"), GenomeBuild.GRCH38, "S2"))
    ids = [r["id"] for r in first.results + first.tasks]
    assert len(set(ids)) == len(ids)
    assert ids == [r["id"] for r in again.results + again.tasks]
    assert not set(ids) & {r["id"] for r in other.results + other.tasks}


def test_recommended_action_is_the_igs_extension(fhir_packages: dict[str, Path]) -> None:
    package = fhir_packages["hl7.fhir.uv.genomics-reporting"]
    definition = json.loads(
        (package / "StructureDefinition-recommended-action.json").read_text(encoding="utf-8")
    )
    assert definition["url"] == RECOMMENDED_ACTION
