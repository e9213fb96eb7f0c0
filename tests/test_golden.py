"""Golden output: known inputs must convert to exactly the committed bytes.

Each folder under tests/golden holds ``case.json`` (the input VCF and options) and the
expected output. After a deliberate change of output, regenerate with
``UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and review the diff like code.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import GenomicSourceClass, PatientRef, Sex

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.json").is_file())


def _options(case: dict[str, str]) -> ConvertOptions:
    return ConvertOptions(
        patient=PatientRef(
            identifier_system="http://hospital.example.org/mrn", identifier_value="M1"
        ),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat(case["format"]),
        sample=case.get("sample"),
        sex=Sex(case.get("sex", "unknown")),
        source_class=GenomicSourceClass(case.get("source_class", "germline")),
        validate=True,
    )


@pytest.mark.parametrize("name", CASES)
def test_output_matches_golden(tmp_path: Path, name: str) -> None:
    folder = GOLDEN / name
    case = orjson.loads((folder / "case.json").read_bytes())
    name_out = "expected" if case["format"] == "ndjson" else "expected.json"
    expected = folder / name_out
    out = tmp_path / name_out
    convert_vcf(HERE / case["input"], out, _options(case))
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(expected, ignore_errors=True)
        shutil.copytree(out, expected) if out.is_dir() else shutil.copyfile(out, expected)
    got = sorted(out.iterdir()) if out.is_dir() else [out]
    want = sorted(expected.iterdir()) if expected.is_dir() else [expected]
    assert [p.name for p in got] == [p.name for p in want]
    for g, w in zip(got, want, strict=True):
        assert g.read_bytes() == w.read_bytes(), f"{name}/{w.name} differs"
