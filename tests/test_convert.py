"""End to end: every kind of test VCF converts, in every output form, to valid FHIR."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter._native import Lane
from adapter.assembly import accession
from adapter.convert import ConvertOptions, OutputFormat, _context, convert_vcf
from adapter.errors import AdapterError, ValidationFailed
from adapter.fhir.variant import VariantBuilder
from adapter.fhir.writers import open_writer
from adapter.model import GenomeBuild, GenomicSourceClass, PatientRef, Sex
from adapter.readers.annotations import _vep_alleles
from adapter.readers.vcf import VcfReader
from adapter.regions import parse_region
from adapter.validation import Validator, validate_path

VCF = Path(__file__).resolve().parent / "data" / "vcf"
ISSUED = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
BASE = ConvertOptions(
    patient=PatientRef(identifier_system="http://hospital.example.org/mrn", identifier_value="M1"),
    issued=ISSUED,
    validate=True,
)

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "snv": ("snv.vcf", {}),
    "snv-bgzipped": ("snv.vcf.gz", {}),
    "indels": ("indels.vcf", {}),
    "multi-allelic": ("multiallelic.vcf", {}),
    "multi-sample-trio": ("trio.vcf", {"sample": "HG002"}),
    "tumor-normal-somatic": (
        "tumor_normal.vcf",
        {"sample": "TUMOR", "source_class": GenomicSourceClass.SOMATIC},
    ),
    "gvcf": ("gvcf.g.vcf", {}),
    "sv-cnv": ("sv.vcf", {"sex": Sex.FEMALE}),
    "chrX-chrY-chrM-male": ("sex_mito.vcf", {"sex": Sex.MALE}),
    "filtered-kept": ("filtered.vcf", {"include_filtered": True}),
    "filtered-skipped": ("filtered.vcf", {}),
    "phased": ("phased.vcf", {}),
    "grch37": ("grch37.vcf", {"build": GenomeBuild.GRCH37}),
    "region": ("regions.vcf.gz", {"regions": (parse_region("chr1:1-2000000"),)}),
    "empty": ("empty.vcf", {}),
    "vep-annotated": ("vep_sample.vcf", {}),
    "snpeff-annotated": ("snpeff_sample.vcf", {}),
    "with-document-reference": (
        "snv.vcf",
        {
            "include_document_reference": True,
            "specimen_identifier": ("http://lab.example.org/specimen", "S-1"),
            "order_identifier": ("http://hospital.example.org/order", "ORD-9"),
            "performer": "Organization/lab-1",
        },
    ),
}


def resources_in(out: Path, form: OutputFormat) -> Iterator[dict[str, Any]]:
    if form is OutputFormat.NDJSON:
        for path in sorted(out.iterdir()):
            for line in path.read_bytes().splitlines():
                yield orjson.loads(line)
    else:
        for entry in orjson.loads(out.read_bytes())["entry"]:
            yield entry["resource"]


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("case", sorted(CASES))
def test_converts_and_validates_with_zero_errors(
    tmp_path: Path, validator: Validator, case: str, form: OutputFormat
) -> None:
    name, overrides = CASES[case]
    out = tmp_path / ("out" if form is OutputFormat.NDJSON else "out.json")
    summary = convert_vcf(VCF / name, out, replace(BASE, output_format=form, **overrides))
    resources = list(resources_in(out, form))
    variants = [r for r in resources if _is_variant(r)]
    assert len(variants) == summary.variants_converted
    assert any(r["resourceType"] == "DiagnosticReport" for r in resources)
    files = sorted(out.iterdir()) if form is OutputFormat.NDJSON else [out]
    for path in files:
        assert validate_path(path).errors == [], path.name
    for resource in resources:
        errors = [i for i in validator.validate(resource) if i.severity == "error"]
        assert errors == [], resource.get("id")


READING = {"sample", "build", "sex", "regions", "include_filtered"}


def _assorted(tmp_path_factory: pytest.TempPathFactory, *, annotated: bool) -> Path:
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    lines = []
    for chrom in ("chr1", "chr2", "chrX"):
        pos = 1
        for _ in range(300):
            pos += rng.choice([0, 1, 2, 5, 40])
            ref = "".join(rng.choice("ACGTacgtN") for _ in range(rng.choice([1, 1, 2, 3])))
            alts = [
                rng.choice([ref[0] + "AG", ref * 2, ref[::-1], rng.choice("ACGTa"), ref[:1]])
                for _ in range(rng.choice([1, 1, 2]))
            ]
            ident = rng.choice([".", ".", "rs123"])
            flt = rng.choice(["PASS", "PASS", ".", "q10"])
            ad = ",".join(str(rng.randint(0, 30)) for _ in range(len(alts) + 1))
            fmt, sample = rng.choice(
                [("GT:AD:DP", f"0/1:{ad}:40"), ("GT", "1/1"), ("GT:AD", f"{len(alts) - 1}/1:{ad}")]
            )
            info = _csq(rng, ref, alts) if annotated else "."
            lines.append(
                f"{chrom}\t{pos}\t{ident}\t{ref}\t{','.join(alts)}\t50\t{flt}\t{info}\t{fmt}\t"
                f"{sample}\n"
            )
    path = tmp_path_factory.mktemp("lane") / "assorted.vcf"
    header = (VCF / "snv.vcf").read_text().split("#CHROM")[0]
    if annotated:
        header += f'##INFO=<ID=CSQ,Number=.,Type=String,Description="{ASSORTED_CSQ}">\n'
        header += '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="ClinVar significance">\n'
    path.write_text(
        header + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n" + "".join(lines)
    )
    return path


@pytest.fixture(scope="module")
def assorted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Records of every lane-shaped sort: SNVs, indels, dups, inversions, lower case, several
    ALTs, repeats at one locus, rs ids, missing AD, filters, on three chromosomes."""
    return _assorted(tmp_path_factory, annotated=False)


@pytest.fixture(scope="module")
def assorted_annotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same sorts of record, each with VEP consequences of every shape the C code reads
    (genes coded, named or none; Ensembl, RefSeq or no transcript; HGVS bare, qualified,
    escaped or absent; flags; frequencies; non-ASCII text; an allele the record lacks) and
    some with ClinVar."""
    return _assorted(tmp_path_factory, annotated=True)


ASSORTED_CSQ = (
    "Consequence annotations from Ensembl VEP. Format: Allele|Consequence|IMPACT|SYMBOL|Gene|"
    "Feature_type|Feature|BIOTYPE|HGVSc|HGVSp|CANONICAL|MANE_SELECT|PICK|HGNC_ID|gnomADe_AF"
)


def _csq(rng: random.Random, ref: str, alts: list[str]) -> str:
    """A CSQ (and now and then a CLNSIG) of one to three random entries per ALT."""
    keys = list(_vep_alleles(ref.upper(), [a.upper() for a in alts]))
    if rng.random() < 0.03:
        keys.append("TTTT")  # an allele the record does not have: counted, read by Python
    entries = []
    for key in keys:
        for _ in range(rng.choice([1, 2, 3])):
            tx = rng.choice(["ENST00000288602.11", "NM_004333.6", ""])
            c = rng.choice(["c.1799T>A", f"{tx}:c.10del", "n.*20A>T", "", "c.5%3D"])
            p = rng.choice(["ENSP00000288602.7:p.Val600Glu", "p.V600E", "", "NP_1.1:p.Leu858%3D"])
            fields = [
                key,
                rng.choice(["missense_variant", "frameshift_variant&splice_region_variant", "x"]),
                rng.choice(["HIGH", "MODERATE", "LOW", "MODIFIER", "", "odd"]),
                rng.choice(["BRAF", "", "GENÉ"]),
                rng.choice(["ENSG00000157764", ""]),
                "Transcript",
                tx,
                rng.choice(["protein_coding", ""]),
                c,
                p,
                rng.choice(["YES", ""]),
                rng.choice(["NM_004333.6", ""]),
                rng.choice(["1", ""]),
                rng.choice(["1097", "HGNC:1097", ""]),
                rng.choice(["0.001", "1e-5&0.2", "", "."]),
            ]
            if rng.random() < 0.8:  # most records alike in shape, for the C lane to take
                change = f"c.{rng.randint(1, 3000)}A>G"
                fields[3:15] = [
                    "BRAF", "ENSG00000157764", "Transcript", "ENST00000288602.11",
                    "protein_coding", f"ENST00000288602.11:{change}", "", "YES", "", "", "1097",
                    "",
                ]  # fmt: skip
            entries.append("|".join(fields))
    clinvar = ";CLNSIG=Pathogenic" if rng.random() < 0.05 else ""
    return "CSQ=" + ",".join(entries) + clinvar


@pytest.mark.parametrize("form", list(OutputFormat), ids=lambda f: f.value)
@pytest.mark.parametrize("case", [*sorted(CASES), "assorted", "assorted-annotated"])
def test_each_variant_is_encoded_as_the_builder_builds_it(
    tmp_path: Path, case: str, form: OutputFormat, assorted: Path, assorted_annotated: Path
) -> None:
    """The encoder (templates, and the C lane once a shape is proven) writes every variant
    byte for byte as encoding the resource the builder builds, with the same id; a call
    with annotations brings its consequences and implication after it, and no other does;
    what it brings is encoded as the checked path encodes its dicts."""
    name, overrides = CASES.get(case, ("", {"include_filtered": True}))
    source = {"assorted": assorted, "assorted-annotated": assorted_annotated}.get(case, VCF / name)
    options = replace(BASE, output_format=form, **overrides)
    reading = {k: v for k, v in overrides.items() if k in READING}
    with VcfReader(source, **reading) as reader:
        ctx = _context(options, reader, source, "0" * 64, 1, studied=(), uncallable=())
        writer = open_writer(form.value, tmp_path / "out", ctx)
        lane = VariantBuilder(ctx, accession).encoding(
            writer.encode_variant, references=writer.reference_prefix
        )
        assert isinstance(lane, Lane)
        fallback = lane.fallback = Counting(lane.fallback)
        built = VariantBuilder(ctx, accession)
        checked = VariantBuilder(ctx, accession).encoding(  # implications as dicts, checked
            writer.encode_variant, check=lambda _: None, references=writer.reference_prefix
        )
        calls = 0
        for calls, call in enumerate(reader, 1):  # noqa: B007 - counted
            data, raw_id = lane(call)
            assert checked(call) == (data, raw_id), call
            resource = built.build(call)
            own = writer.encode_variant(resource)
            assert data[: len(own)] == own, call  # what follows: what annotations say of it
            assert raw_id[:16] == uuid.UUID(resource["id"]).bytes
            annotated = call.annotation is not None and call.annotation.primary is not None
            derived = annotated or call.clinvar is not None
            assert (len(data) > len(own)) == (len(raw_id) > 16) == derived
    if case.startswith("assorted"):
        assert calls - fallback.calls > 100  # the C lane took these


class Counting:
    """A function, counting its calls."""

    def __init__(self, function: Any) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        return self.function(*args)


def _is_variant(resource: dict[str, Any]) -> bool:
    codes = resource.get("code", {}).get("coding", [])
    return resource["resourceType"] == "Observation" and codes[0]["code"] == "69548-6"


def test_regression_insertion_before_the_first_base_after_a_proven_insertion(
    tmp_path: Path,
) -> None:
    """An insertion at POS 1 has no g.HGVS; once another insertion had proven the lane's
    template, it took the lane and wrote null where the HGVS goes."""
    header = (VCF / "snv.vcf").read_text().split("#CHROM")[0]
    columns = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    records = [
        f"chr1\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\t.\tGT:AD\t0/1:10,10\n"
        for pos, ref, alt in [(100, "A", "AT"), (200, "C", "CG"), (1, "A", "TA")]
    ]
    vcf = tmp_path / "unsorted.vcf"
    vcf.write_text(header + columns + "".join(records))
    out = tmp_path / "out.json"
    convert_vcf(vcf, out, replace(BASE, validate=False))
    assert b"null" not in out.read_bytes()
    assert validate_path(out).errors == []


def test_filtered_records_are_counted_not_lost(tmp_path: Path) -> None:
    kept = convert_vcf(
        VCF / "filtered.vcf", tmp_path / "a.json", replace(BASE, include_filtered=True)
    )
    skipped = convert_vcf(VCF / "filtered.vcf", tmp_path / "b.json", BASE)
    assert skipped.variants_converted < kept.variants_converted
    n_filtered = sum(v for k, v in skipped.skipped.items() if k.startswith("filtered"))
    assert skipped.variants_converted + n_filtered == kept.variants_converted


def test_every_reference_in_a_collection_bundle_resolves(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    convert_vcf(VCF / "sv.vcf", out, replace(BASE, output_format=OutputFormat.COLLECTION))
    bundle = orjson.loads(out.read_bytes())
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    for ref in _references(bundle):
        if ref.startswith("urn:uuid:"):
            assert ref in full_urls


def test_transaction_entries_are_conditional_updates_by_business_identifier(
    tmp_path: Path,
) -> None:
    out = tmp_path / "t.json"
    convert_vcf(VCF / "multiallelic.vcf", out, BASE)
    for entry in orjson.loads(out.read_bytes())["entry"]:
        request = entry["request"]
        ident = entry["resource"]["identifier"][0]
        assert request["method"] == "PUT"
        assert request["url"] == (
            f"{entry['resource']['resourceType']}?identifier={ident['system']}|{ident['value']}"
        )


def test_a_resource_failing_validation_aborts_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.fhir import variant

    real = variant.VariantBuilder.observation

    def broken(self: variant.VariantBuilder, *args: Any) -> dict[str, Any]:
        resource = real(self, *args)
        resource["status"] = "done"  # not in the required ObservationStatus binding
        return resource

    monkeypatch.setattr(variant.VariantBuilder, "observation", broken)
    out = tmp_path / "x.json"
    with pytest.raises(ValidationFailed) as info:
        convert_vcf(VCF / "snv.vcf", out, BASE)
    assert any("status" in i.path for i in info.value.issues)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "bad_header.vcf",
        "corrupt.vcf.gz",
        "malformed_pos.vcf",
        "mismatch_columns.vcf",
        "mismatch_format.vcf",
        "not_a_vcf.fa",
        "not_a_vcf.png",
        "sites_only.vcf",
        "truncated.vcf.gz",
        "hg19_chrM.vcf",
    ],
)
def test_bad_input_raises_a_typed_error_and_writes_nothing(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out.json"
    with pytest.raises(AdapterError) as info:
        convert_vcf(VCF / name, out, BASE)
    assert name in str(info.value) or info.value.source is not None
    assert list(tmp_path.iterdir()) == []


def test_report_id_makes_identifiers_stable_across_corrected_files(tmp_path: Path) -> None:
    opts = replace(BASE, report_id="LAB-2026-0001", output_format=OutputFormat.COLLECTION)
    convert_vcf(VCF / "snv.vcf", tmp_path / "a.json", opts)
    convert_vcf(VCF / "snv.vcf.gz", tmp_path / "b.json", opts)
    ids = [
        {e["resource"]["id"] for e in orjson.loads((tmp_path / n).read_bytes())["entry"]}
        for n in ("a.json", "b.json")
    ]
    assert ids[0] == ids[1]


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)
