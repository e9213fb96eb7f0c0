"""Conversion in worker processes: the same bytes as one process, the same errors."""

from __future__ import annotations

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
from adapter.model import PatientRef, Sex

OPTIONS = ConvertOptions(
    patient=PatientRef(identifier_system="http://hospital.example.org/mrn", identifier_value="M1"),
    issued=ISSUED,
)


def read_output(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in sorted(path.iterdir())}
    return {path.name: path.read_bytes()}


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of two variants, so that even small files are shared among the workers."""
    monkeypatch.setattr(adapter.convert, "CHUNK_VARIANTS", 2)


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_chunks")
@pytest.mark.parametrize("form", list(OutputFormat))
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("multiallelic.vcf", {}),
        ("sex_mito.vcf", {"sex": Sex.MALE}),
        ("sv.vcf", {"validate": True}),
        ("empty.vcf", {}),
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
@pytest.mark.usefixtures("tiny_chunks")
def test_a_worker_error_reaches_the_caller_typed_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    with pytest.raises(MalformedRecordError) as raised:
        convert_vcf(VCF / "malformed_pos.vcf", out, replace(OPTIONS, jobs=2))
    assert raised.value.line is not None
    assert list(tmp_path.iterdir()) == []


def test_negative_jobs_are_refused() -> None:
    with pytest.raises(AdapterError, match="jobs"):
        replace(OPTIONS, jobs=-1).check()


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
