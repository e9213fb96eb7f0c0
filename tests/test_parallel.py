"""Conversion in worker processes: the same bytes as one process, the same errors."""

from __future__ import annotations

import io
import itertools
import pickle
from dataclasses import replace
from pathlib import Path

import pytest
from test_convert import ISSUED, VCF

import adapter.convert
from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.errors import (
    AdapterError,
    MalformedRecordError,
    UnknownSampleError,
    ValidationFailed,
    ValidationIssue,
)
from adapter.model import GenomicRegion, MicrosatelliteStatus, PatientRef, Sex, TumorBiomarkers
from adapter.parallel import _cut, _locus

OPTIONS = ConvertOptions(
    patient=PatientRef(identifier_system="http://hospital.example.org/mrn", identifier_value="M1"),
    issued=ISSUED,
)


def read_output(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {path.name: path.read_bytes()}


@pytest.fixture
def tiny_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    """A span per locus and chunks of two variants, so even small files are shared out."""
    monkeypatch.setattr(adapter.convert, "SPAN_BYTES", 1)
    monkeypatch.setattr(adapter.convert, "CHUNK_VARIANTS", 2)


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_spans")
@pytest.mark.parametrize("form", list(OutputFormat))
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("multiallelic.vcf", {}),
        ("sex_mito.vcf", {"sex": Sex.MALE}),
        ("sv.vcf", {"validate": True}),
        ("empty.vcf", {}),
        ("snv.vcf.gz", {"tumor": TumorBiomarkers(7.0, MicrosatelliteStatus.MSI_H)}),
        ("gvcf.g.vcf", {}),
        ("vep_sample.vcf", {"validate": True}),
        ("regions.vcf", {"regions": (GenomicRegion("chr1", 0, 20_000),)}),
    ],
)
def test_workers_write_the_same_bytes_as_one_process(
    tmp_path: Path, form: OutputFormat, name: str, extra: dict[str, object]
) -> None:
    options = replace(OPTIONS, output_format=form, **extra)  # type: ignore[arg-type]
    one, three = tmp_path / "one", tmp_path / "three"
    single = convert_vcf(VCF / name, one, replace(options, jobs=1))
    shared = convert_vcf(VCF / name, three, replace(options, jobs=3))
    assert read_output(three) == {k.replace("one", "three"): v for k, v in read_output(one).items()}
    assert shared == single
    assert {p.name for p in tmp_path.iterdir()} == {"one", "three"}  # no part files left


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_spans")
@pytest.mark.parametrize(
    "name", ["malformed_pos.vcf", "mismatch_format.vcf", "truncated.vcf.gz", "corrupt.vcf.gz"]
)
def test_a_worker_error_reaches_the_caller_as_one_process_raises_it(
    tmp_path: Path, name: str
) -> None:
    errors = []
    for jobs in (1, 2):
        with pytest.raises(AdapterError) as raised:
            convert_vcf(VCF / name, tmp_path / "out.json", replace(OPTIONS, jobs=jobs))
        errors.append(raised.value)
        assert list(tmp_path.iterdir()) == []
    one, two = errors
    assert type(two) is type(one)
    assert (two.source, two.line, two.field) == (one.source, one.line, one.field)


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_spans")
def test_a_malformed_line_in_a_later_span_is_named_by_its_line_in_the_input(
    tmp_path: Path,
) -> None:
    lines = (VCF / "snv.vcf").read_text().splitlines(keepends=True)
    broken = tmp_path / "broken.vcf"
    chrom, _, rest = lines[-1].split("\t", 2)
    broken.write_text("".join([*lines, f"{chrom}\tnot-a-position\t{rest}"]))
    with pytest.raises(MalformedRecordError) as raised:
        convert_vcf(broken, tmp_path / "out.json", replace(OPTIONS, jobs=2))
    assert (raised.value.source, raised.value.line) == (str(broken), len(lines) + 1)


@pytest.mark.parametrize("size", [1, 30, 10_000])
def test_spans_hold_every_line_once_and_never_split_a_locus(size: int) -> None:
    loci = ["chr1\t5", "chr1\t5", "chr1\t7", "chr1\t7", "chr1\t07", "chr2\t7", "chr2\t9"]
    body = "".join(f"{locus}\t.\tA\tC\t.\tPASS\t.\n" for locus in loci).encode()
    spans = list(_cut(io.BytesIO(body), size))
    assert b"".join(spans) == body
    held = [{_locus(bytearray(line)) for line in span.splitlines()} for span in spans]
    for before, after in itertools.pairwise(held):
        assert not before & after
    if size == 1:
        assert [len(span.splitlines()) for span in spans] == [2, 3, 1, 1]


@pytest.mark.parametrize(
    "error",
    [
        MalformedRecordError("bad POS", source="a.vcf", line=12, field="POS"),
        UnknownSampleError("no such sample", samples=["A", "B"], source="a.vcf"),
        ValidationFailed("invalid", issues=[ValidationIssue("error", "Observation.code", "x")]),
    ],
)
def test_errors_cross_processes_intact(error: AdapterError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)
