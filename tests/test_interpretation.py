"""Interpretation in the conversion: the lab's classifications over ClinVar's, phase
relations and compound heterozygotes, pharmacogenomic recommendations, and the report's
conclusion made of findings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_convert import BASE, VCF, resources_in

import adapter.convert
from adapter._native import Lane
from adapter.assembly import accession
from adapter.convert import OutputFormat, convert_vcf
from adapter.errors import GenomeBuildError, InputError
from adapter.fhir.codes import SECURITY_LABELS
from adapter.fhir.report import conclusion
from adapter.fhir.variant import VariantBuilder
from adapter.model import (
    AnalysisContext,
    Finding,
    FindingKind,
    GenomeBuild,
    MicrosatelliteStatus,
    PatientRef,
    TumorBiomarkers,
)
from adapter.readers.classifications import read_classifications
from adapter.validation import Validator, validate_path

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
LAB = EXAMPLES / "lab-classifications.tsv"
LAB_LABEL = "Example Genomics Laboratory 2025-06"
PGX = EXAMPLES / "pgx" / "calls.tsv"
IG = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/"
SIGNIFICANCE = "53037-8"


@pytest.fixture
def tiny_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """A span per locus and chunks of two variants, so even small files are shared out."""
    monkeypatch.setattr(adapter.convert, "SPAN_BYTES", 1)
    monkeypatch.setattr(adapter.convert, "CHUNK_VARIANTS", 2)


def out_path(tmp_path: Path, name: str, form: OutputFormat) -> Path:
    return tmp_path / (name if form is OutputFormat.NDJSON else f"{name}.json")


def of_profile(resources: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in resources if IG + name in r.get("meta", {}).get("profile", [])]


def uuid_of(reference: dict[str, str]) -> str:
    """The UUID a reference or an identifier names, whatever the output form."""
    text = reference.get("reference") or reference["value"]
    return text.rsplit("/", 1)[-1].removeprefix("urn:uuid:")


def report_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in resources if r["resourceType"] == "DiagnosticReport")


def analysis_notes(resources: list[dict[str, Any]]) -> list[str]:
    analysis = of_profile(resources, "genomic-study-analysis")[0]
    return [n["text"] for n in analysis.get("note", [])]


def listed(report: dict[str, Any]) -> set[str]:
    return {uuid_of(ref) for ref in report.get("result", [])}


def assert_valid(out: Path, form: OutputFormat, validator: Validator) -> list[dict[str, Any]]:
    """Every resource of the output validates with zero errors; the resources."""
    files = sorted(out.iterdir()) if form is OutputFormat.NDJSON else [out]
    for path in files:
        assert validate_path(path).errors == [], path.name
    resources = list(resources_in(out, form))
    for resource in resources:
        errors = [i for i in validator.validate(resource) if i.severity == "error"]
        assert errors == [], (resource.get("meta"), errors)
    return resources


def read_output(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {"out": path.read_bytes()}


# ---- phasing -----------------------------------------------------------------------------


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.usefixtures("tiny_spans")
def test_a_phased_compound_heterozygote_becomes_relations_a_genotype_and_a_conclusion(
    tmp_path: Path, validator: Validator, form: OutputFormat, jobs: int
) -> None:
    out = out_path(tmp_path, "out", form)
    options = replace(BASE, output_format=form, jobs=jobs)
    convert_vcf(VCF / "phased_compound_het.vcf", out, options)
    resources = assert_valid(out, form, validator)
    variants = {uuid_of(v["identifier"][0]): v for v in of_profile(resources, "variant")}
    relations = of_profile(resources, "sequence-phase-relationship")
    found = sorted(
        (
            sorted(_start(variants[uuid_of(d)]) for d in r["derivedFrom"]),
            r["valueCodeableConcept"]["coding"][0]["code"],
        )
        for r in relations
    )
    assert found == [([9950500, 9982700], "Trans"), ([216000100, 216000250], "Cis")]
    genotypes = of_profile(resources, "genotype")
    assert [g["valueCodeableConcept"]["text"] for g in genotypes] == [
        "NM_022787.3(NMNAT1):c.[53A>G];[769G>A]"
    ]
    report = report_of(resources)
    assert {uuid_of(r["identifier"][0]) for r in relations + genotypes} <= listed(report)
    assert report["conclusion"].splitlines() == [
        "NMNAT1 NM_022787.3:c.53A>G: Likely pathogenic (ClinVar).",
        "NMNAT1 NM_022787.3:c.769G>A: Pathogenic (ClinVar).",
        "NMNAT1: compound heterozygous, NM_022787.3:c.53A>G (Likely pathogenic) and "
        "NM_022787.3:c.769G>A (Pathogenic) are in trans.",
    ]


def _start(variant: dict[str, Any]) -> int:
    """A Variant's exact start (LOINC 81254-5)."""
    for component in variant["component"]:
        if component["code"]["coding"][0]["code"] == "81254-5":
            start: int = component["valueRange"]["low"]["value"]
            return start
    raise AssertionError("no exact start")


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_spans")
@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("phased_compound_het.vcf", {}),
        ("vep_sample.vcf", {"classifications": LAB, "pharmacogenomics": PGX}),
    ],
)
def test_one_process_and_several_write_the_same_bytes(
    tmp_path: Path, form: OutputFormat, name: str, extra: dict[str, Any]
) -> None:
    """Phased alleles, findings and counts travel from the workers in file order: one
    tracker, one conclusion, whatever the number of processes."""
    options = replace(BASE, output_format=form, validate=False, **extra)
    one, three = out_path(tmp_path, "one", form), out_path(tmp_path, "three", form)
    single = convert_vcf(VCF / name, one, replace(options, jobs=1))
    shared = convert_vcf(VCF / name, three, replace(options, jobs=3))
    assert read_output(three) == read_output(one)
    assert shared == single


# ---- the lab's classifications over ClinVar's ---------------------------------------------


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_the_labs_classification_decides_over_clinvar_and_clinvar_stays_elsewhere(
    tmp_path: Path, validator: Validator, form: OutputFormat
) -> None:
    out = out_path(tmp_path, "out", form)
    options = replace(BASE, output_format=form, classifications=LAB)
    convert_vcf(VCF / "vep_sample.vcf", out, options)
    resources = assert_valid(out, form, validator)
    variants = {uuid_of(v["identifier"][0]): v for v in of_profile(resources, "variant")}
    decided = {}
    for implication in of_profile(resources, "diagnostic-implication"):
        variant = variants[uuid_of(implication["derivedFrom"][0])]
        key = (_start(variant), _alt(variant))
        assert key not in decided  # one classification per allele: never ClinVar's as well
        significance = implication["component"][0]
        assert significance["code"]["coding"][0]["code"] == SIGNIFICANCE
        cited = significance["extension"][0]["valueRelatedArtifact"]["label"]
        value = significance["valueCodeableConcept"]
        decided[key] = (cited, value["coding"][0]["code"] if "coding" in value else value["text"])
    assert decided == {
        (43124027, "A"): (LAB_LABEL, "LA6668-3"),  # ClinVar agrees: the lab still decides
        (43125000, "C"): (LAB_LABEL, "LA26333-7"),  # ClinVar: P/LP; the lab: uncertain
        (43126000, "A"): ("ClinVar", "drug response"),  # not in the lab's file
        (7674220, "T"): (LAB_LABEL, "LA6668-3"),  # no ClinVar INFO
        (7676153, "A"): (LAB_LABEL, "LA26334-5"),
    }
    report = report_of(resources)
    assert report["conclusion"].splitlines() == [
        "TP53 ENST00000269305.9:c.743G>A (ENSP00000269305.4:p.Arg248Gln): Pathogenic for "
        f"Li-Fraumeni syndrome ({LAB_LABEL}).",
        "BRCA1 ENST00000357654.9:c.68_69del (ENSP00000350283.3:p.Glu23ValfsTer17): Pathogenic "
        "for Breast-ovarian cancer, familial, susceptibility to, 1; Hereditary breast ovarian "
        f"cancer syndrome ({LAB_LABEL}).",
    ]
    notes = analysis_notes(resources)
    assert f"Lab classifications (decide over ClinVar): {LAB_LABEL}" in notes
    assert f"Diagnostic implications by the source that decided: {LAB_LABEL}: 4; ClinVar: 1" in (
        notes
    )
    assert "Transcript annotation (VCF header): VEP v110" in notes
    assert "ClinVar release (VCF header): 202301" in notes


def _alt(variant: dict[str, Any]) -> str:
    """A Variant's ALT allele (LOINC 69551-0)."""
    for component in variant["component"]:
        if component["code"]["coding"][0]["code"] == "69551-0":
            alt: str = component["valueString"]
            return alt
    raise AssertionError("no ALT")


def test_the_labs_implication_states_evidence_conditions_date_and_classifier(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.json"
    convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, classifications=LAB))
    resources = list(resources_in(out, OutputFormat.TRANSACTION))
    brca1 = next(
        i
        for i in of_profile(resources, "diagnostic-implication")
        if i.get("note", [{}])[0].get("time") == "2024-05-14"
    )
    parts = {c["code"]["coding"][0]["code"]: c["valueCodeableConcept"] for c in brca1["component"]}
    assert parts["93044-6"] == {"text": "PVS1, PS4, PM2"}
    conditions = [
        c["valueCodeableConcept"]
        for c in brca1["component"]
        if c["code"]["coding"][0]["code"] == "81259-4"
    ]
    mondo = "http://purl.obolibrary.org/obo/mondo.owl"
    assert conditions == [
        {
            "coding": [{"system": mondo, "code": "MONDO:0011450"}],
            "text": "Breast-ovarian cancer, familial, susceptibility to, 1",
        },
        {
            "coding": [{"system": mondo, "code": "MONDO:0003582"}],
            "text": "Hereditary breast ovarian cancer syndrome",
        },
    ]
    assert brca1["note"] == [
        {
            "authorString": "Variant review board",
            "time": "2024-05-14",
            "text": f"Classified Pathogenic by {LAB_LABEL} on 2024-05-14. "
            "Founder variant, also known as 185delAG",
        }
    ]


def test_a_plain_call_the_lab_classified_leaves_the_c_lane_for_its_implication(
    tmp_path: Path, validator: Validator
) -> None:
    """chr2:166848646 G>T has no annotation, ClinVar or ID: the C lane would take it and
    know nothing of the lab; the encoding sends it to the Python encoder instead."""
    table = HERE / "data" / "classifications" / "snv_plain_call.tsv"
    out = tmp_path / "out.json"
    summary = convert_vcf(VCF / "snv.vcf", out, replace(BASE, classifications=table))
    resources = assert_valid(out, OutputFormat.TRANSACTION, validator)
    implications = of_profile(resources, "diagnostic-implication")
    assert len(implications) == 1
    variant = next(
        v
        for v in of_profile(resources, "variant")
        if uuid_of(v["identifier"][0]) == uuid_of(implications[0]["derivedFrom"][0])
    )
    assert (_start(variant), _alt(variant)) == (166848646, "T")
    assert summary.resources_written["Observation"] == summary.variants_converted + 1
    assert report_of(resources)["conclusion"] == (
        "chr2:166848646 G>T: Likely pathogenic for Developmental and epileptic encephalopathy "
        "(Example Genomics Laboratory 2026-01)."
    )


def test_without_a_table_the_encoding_is_the_lane_itself() -> None:
    """The path without classifications stays exactly as fast: no function in front."""
    ctx = AnalysisContext(PatientRef(id="p-1"), GenomeBuild.GRCH38, "S1")
    table = read_classifications(LAB)
    plain = VariantBuilder(ctx, accession).encoding(lambda _: b"")
    classified = VariantBuilder(ctx, accession, classifications=table).encoding(lambda _: b"")
    assert isinstance(plain, Lane)
    assert not isinstance(classified, Lane)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("build\tchromosome\n", InputError),
        (LAB.read_text().replace("GRCh38\t", "GRCh37\t"), GenomeBuildError),
    ],
    ids=["malformed", "other-build"],
)
def test_a_bad_classification_file_fails_before_any_output(
    tmp_path: Path, text: str, error: type[Exception]
) -> None:
    table = tmp_path / "lab.tsv"
    table.write_text(text)
    out = tmp_path / "out" / "out.json"
    out.parent.mkdir()
    with pytest.raises(error) as raised:
        convert_vcf(VCF / "vep_sample.vcf", out, replace(BASE, classifications=table))
    assert str(table) in str(raised.value)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    ("header", "release"),
    [
        ('##VEP="v110" ClinVar="202301"', "202301"),
        (
            "##bcftools_annotateCommand=annotate -a clinvar_20240107.vcf.gz -c INFO/CLNSIG",
            "20240107",
        ),
        ("##bcftools_annotateCommand=annotate -a clinvar.vcf.gz -c INFO/CLNSIG", None),
    ],
)
def test_the_analysis_names_the_clinvar_release_the_header_gives(
    tmp_path: Path, header: str, release: str | None
) -> None:
    lines = [
        line
        for line in (VCF / "vep_sample.vcf").read_text().splitlines(keepends=True)
        if not line.startswith("##VEP=")
    ]
    lines.insert(3, header + "\n")
    vcf = tmp_path / "annotated.vcf"
    vcf.write_text("".join(lines))
    convert_vcf(vcf, tmp_path / "out.json", BASE)
    notes = analysis_notes(list(resources_in(tmp_path / "out.json", OutputFormat.TRANSACTION)))
    found = [n.split(": ", 1)[1] for n in notes if n.startswith("ClinVar release")]
    assert found == ([release] if release else [])


# ---- pharmacogenomics --------------------------------------------------------------------


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
def test_the_report_names_each_pgx_task_and_lists_the_pgx_results(
    tmp_path: Path, validator: Validator, form: OutputFormat
) -> None:
    out = out_path(tmp_path, "out", form)
    summary = convert_vcf(
        VCF / "snv.vcf", out, replace(BASE, output_format=form, pharmacogenomics=PGX)
    )
    resources = assert_valid(out, form, validator)
    tasks = [r for r in resources if r["resourceType"] == "Task"]
    report = report_of(resources)
    recommended = [
        uuid_of(e["valueReference"])
        for e in report["extension"]
        if e["url"] == IG + "recommended-action"
    ]
    assert len(tasks) == summary.resources_written["Task"] == 10
    assert sorted(recommended) == sorted(uuid_of(t["identifier"][0]) for t in tasks)
    pgx = [
        r
        for r in resources
        if {IG + "genotype", IG + "haplotype", IG + "therapeutic-implication"}
        & set(r.get("meta", {}).get("profile", []))
    ]
    assert len(pgx) == 8 * 3 + 10  # a genotype and two haplotypes per gene, an implication per Task
    assert {uuid_of(r["identifier"][0]) for r in pgx} <= listed(report)
    assert not [r for r in summary.skipped if "pharmacogenomics" in r]  # each gene met a rule
    lines = report["conclusion"].splitlines()
    assert (
        "CYP2C19 *1/*2 (Intermediate Metabolizer): CPIC recommendations for clopidogrel, "
        "citalopram, sertraline." in lines
    )
    assert len(lines) == 8
    assert analysis_notes(resources)[-1].startswith("Pharmacogenomic calls: TSV from calls.tsv;")


def test_pgx_calls_no_rule_meets_are_counted_in_the_summary(tmp_path: Path) -> None:
    """Counted apart from the VCF's skips, whose reasons (``no_call``) they could share."""
    calls = HERE / "data" / "pgx" / "not_in_table.tsv"
    plain = convert_vcf(VCF / "snv.vcf", tmp_path / "plain.json", BASE)
    summary = convert_vcf(
        VCF / "snv.vcf", tmp_path / "out.json", replace(BASE, pharmacogenomics=calls)
    )
    assert summary.skipped == {
        **plain.skipped,
        "pharmacogenomics_gene_not_in_table": 1,  # CYP3A5
        "pharmacogenomics_phenotype_not_in_table": 1,  # DPYD poor metabolizer
        "pharmacogenomics_partner_gene_not_called": 1,  # TPMT without NUDT15
    }


def test_a_bad_pgx_file_fails_before_any_output(tmp_path: Path) -> None:
    calls = HERE / "data" / "pgx" / "bad_header.tsv"
    with pytest.raises(InputError) as raised:
        convert_vcf(VCF / "snv.vcf", tmp_path / "out.json", replace(BASE, pharmacogenomics=calls))
    assert raised.value.source == str(calls)
    assert list(tmp_path.iterdir()) == []


# ---- biomarkers and the conclusion ----------------------------------------------------------


def test_the_conclusion_states_tmb_and_msi(tmp_path: Path, validator: Validator) -> None:
    out = tmp_path / "out.json"
    tumor = TumorBiomarkers(12.5, MicrosatelliteStatus.MSI_H)
    options = replace(BASE, sample="TUMOR", tumor=tumor, knowledge=EXAMPLES / "actionability.tsv")
    convert_vcf(VCF / "tumor_normal.vcf", out, options)
    resources = assert_valid(out, OutputFormat.TRANSACTION, validator)
    lines = report_of(resources)["conclusion"].splitlines()
    assert lines[-2:] == [
        "Tumor mutational burden: 12.5 mutations/Mb.",
        "Microsatellite status: MSI-H.",
    ]
    assert all("responsive to" in line for line in lines[:-2])  # the knowledge's therapies


def test_a_plain_conversion_concludes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    convert_vcf(VCF / "snv.vcf", out, BASE)
    assert "conclusion" not in report_of(list(resources_in(out, OutputFormat.TRANSACTION)))


def _finding(kind: FindingKind, name: str, *about: str) -> Finding:
    return Finding(kind, f"{name}.", about or (name,))


def test_the_conclusion_orders_by_kind_then_as_found() -> None:
    findings = [
        _finding(FindingKind.PHARMACOGENOMIC, "pgx"),
        _finding(FindingKind.THERAPEUTIC, "drug"),
        _finding(FindingKind.DIAGNOSTIC, "second"),
        _finding(FindingKind.BIOMARKER, "tmb"),
        _finding(FindingKind.COMPOUND_HETEROZYGOTE, "trans"),
        _finding(FindingKind.DIAGNOSTIC, "first"),
    ]
    assert conclusion(findings, classified=True) == "second.\nfirst.\ntrans.\ndrug.\ntmb.\npgx."


def test_a_withheld_finding_leaves_no_trace_and_the_rest_is_counted_after_the_filter() -> None:
    findings = [_finding(FindingKind.DIAGNOSTIC, f"v{n}", f"i{n}", f"var{n}") for n in range(5)]
    withheld = {"var1"}  # a withheld Variant: its implication's sentence goes with it
    kept = [f for f in findings if withheld.isdisjoint(f.about)]
    text = conclusion(kept, classified=True, limit=2)
    assert text == "v0.\nv2.\n2 more findings are listed in the report's results."
    assert conclusion(findings[1:2], classified=True) == "v1."
    unfiltered = conclusion(findings, classified=True, limit=2)
    assert unfiltered == "v0.\nv1.\n3 more findings are listed in the report's results."


@pytest.mark.parametrize(
    ("findings", "classified", "expected"),
    [
        ([], False, None),
        ([], True, "No variants classified as pathogenic or likely pathogenic are reported."),
        (
            [_finding(FindingKind.BIOMARKER, "tmb")],
            True,
            "No variants classified as pathogenic or likely pathogenic are reported.\ntmb.",
        ),
        ([_finding(FindingKind.BIOMARKER, "tmb")], False, "tmb."),
        ([_finding(FindingKind.DIAGNOSTIC, "p")], True, "p."),
    ],
)
def test_none_pathogenic_is_said_only_when_variants_were_classified(
    findings: list[Finding], classified: bool, expected: str | None
) -> None:
    assert conclusion(findings, classified=classified) == expected


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("jobs", [1, 2])
def test_every_resource_carries_the_genomic_security_labels(
    tmp_path: Path, form: OutputFormat, jobs: int
) -> None:
    """Confidentiality R and sensitivity GDIS on each resource of a full interpretation
    (variants, consequences, implications, phase, PGx, report, study), whatever the path:
    the C lane's templates, Python's encodings and the report's writing."""
    options = replace(
        BASE, output_format=form, jobs=jobs, classifications=LAB, pharmacogenomics=PGX
    )
    out = out_path(tmp_path, "labels", form)
    convert_vcf(VCF / "vep_sample.vcf", out, options)
    resources = resources_in(out, form)
    assert len({r["resourceType"] for r in resources}) >= 3
    for resource in resources:
        labels = {(c["system"], c["code"]) for c in resource["meta"]["security"]}
        assert labels == {(c["system"], c["code"]) for c in SECURITY_LABELS}, resource["id"]
