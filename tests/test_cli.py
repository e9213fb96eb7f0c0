"""The command line: options, exit codes, summary, atomic output, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from adapter import cli
from adapter.cli import main
from adapter.convert import ConvertOptions
from adapter.model import ConversionSummary

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "NA12878-panel.vcf.gz"
VCF = ROOT / "tests" / "data" / "vcf"
PATIENT = ["--patient-identifier", "http://hospital.example.org/mrn|MRN-0001"]
ISSUED = ["--issued", "2026-01-15T09:30:00Z"]
TREAT = ["--purpose", "TREAT"]  # the shipped policy refuses a request without a purpose


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def convert(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    """``convert`` for treatment use."""
    return run(capsys, "convert", *TREAT, *args)


def test_convert_example_writes_a_valid_transaction_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    code, err = convert(capsys, EXAMPLE, *PATIENT, *ISSUED, "--validate", "--out", out)
    assert code == 0, err
    bundle = orjson.loads(out.read_bytes())
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "transaction"
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Observation", "DiagnosticReport"} <= types
    assert "variants from" in err


def test_same_input_and_options_give_identical_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outs:
        at = ["--decided-at", "2026-11-22T12:00:00Z"]  # the Provenance records the decision
        assert convert(capsys, EXAMPLE, *PATIENT, *at, "--out", out)[0] == 0
    assert outs[0].read_bytes() == outs[1].read_bytes()


def test_ndjson_writes_one_file_per_resource_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bulk"
    code, err = convert(capsys, EXAMPLE, "--patient", "p1", "--format", "ndjson", "--out", out)
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert "Observation.ndjson" in names
    assert "DiagnosticReport.ndjson" in names
    for line in (out / "Observation.ndjson").read_bytes().splitlines():
        assert orjson.loads(line)["resourceType"] == "Observation"


def test_not_a_vcf_exits_3_with_the_file_named_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "report.vcf"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    out = tmp_path / "bundle.json"
    code, err = convert(capsys, bad, *PATIENT, "--out", out)
    assert code == 3
    assert "report.vcf" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_truncated_gzip_exits_3_and_leaves_no_partial_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = EXAMPLE.read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "bundle.json"
    code, err = convert(capsys, cut, *PATIENT, "--out", out)
    assert code == 3, err
    assert not out.exists()


def test_missing_file_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = convert(capsys, tmp_path / "nope.vcf", *PATIENT, "--out", tmp_path / "o")
    assert code == 3
    assert "nope.vcf" in err


def test_unknown_sample_lists_the_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = convert(
        capsys, EXAMPLE, *PATIENT, "--sample", "NOBODY", "--out", tmp_path / "o.json"
    )
    assert code == 3
    assert "NOBODY" in err
    assert "samples in the file" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--patient-identifier", "no-bar-here"], "SYSTEM|VALUE"),
        (["--patient", "p1", "--issued", "2026-01-15T09:30:00"], "zone"),
        (["--patient", "p1", "--issued", "yesterday"], "ISO 8601"),
        (["--patient", "p1", "--region", "chr1:100-200", "--regions-bed", "x.bed"], "not both"),
        (["--patient", "p1", "--heteroplasmy-threshold", "0.2"], "heteroplasmy"),
        (["--patient", "p1", "--transcript-order", "mane,canonical"], "mane_select, picked"),
        (["--patient", "p1", "--transcript-order", "picked,picked"], "twice"),
    ],
)
def test_conflicting_or_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, err = convert(capsys, EXAMPLE, *args, "--out", tmp_path / "o.json")
    assert code == 2, err
    assert needle in err
    assert not (tmp_path / "o.json").exists()


def test_validate_command_accepts_our_output_and_rejects_a_broken_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    assert convert(capsys, EXAMPLE, *PATIENT, "--format", "collection", "--out", out)[0] == 0
    assert main(["validate", str(out)]) == 0
    assert " 0 errors" in capsys.readouterr().out
    bundle = orjson.loads(out.read_bytes())
    variant = next(e["resource"] for e in bundle["entry"] if "component" in e["resource"])
    variant["category"] = variant["category"][:1]  # drop the required GE category
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps(bundle))
    assert main(["validate", str(broken)]) == 4
    assert "category" in capsys.readouterr().out


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "bundle.json"
    args = ["convert", *TREAT, str(EXAMPLE), *PATIENT, "--out", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "adapter.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(out.read_bytes())["type"] == "transaction"


def test_validate_accepts_a_bulk_ndjson_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bulk"
    assert convert(capsys, EXAMPLE, "--patient", "p1", "--format", "ndjson", "--out", out)[0] == 0
    assert main(["validate", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Observation.ndjson" in printed
    assert "warning:" not in printed  # listed only with --warnings
    (tmp_path / "empty").mkdir()
    assert main(["validate", str(tmp_path / "empty")]) == 3


def test_tumor_measures_become_biomarker_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    args = ["--tmb", "9.5", "--msi", "MSS", "--validate", "--out", out]
    code, err = convert(capsys, EXAMPLE, *PATIENT, *ISSUED, *args)
    assert code == 0, err
    data = out.read_bytes()
    assert b'"94076-7"' in data
    assert b'"LA14122-8"' in data
    with pytest.raises(SystemExit) as raised:
        convert(capsys, EXAMPLE, *PATIENT, "--msi", "high", "--out", out)
    assert raised.value.code == 2
    assert "--msi" in capsys.readouterr().err


def test_knowledge_file_yields_therapeutic_implications(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    knowledge = ROOT / "examples" / "actionability.tsv"
    args = ["--msi", "MSI-H", "--knowledge", knowledge, "--validate", "--out", out]
    code, err = convert(capsys, EXAMPLE, *PATIENT, *ISSUED, *args)
    assert code == 0, err
    assert out.read_bytes().count(b"StructureDefinition/therapeutic-implication") == 1
    code, err = convert(capsys, EXAMPLE, *PATIENT, "--knowledge", tmp_path, "--out", out)
    assert code == 3
    assert "knowledge file" in err


def test_classifications_and_pgx_files_reach_the_conversion_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ConvertOptions] = []

    def converted(source: Path, out: Path, options: ConvertOptions, **_: object) -> object:
        seen.append(options)
        return ConversionSummary()

    monkeypatch.setattr(cli, "convert_vcf", converted)
    labs, pgx = ROOT / "examples" / "lab-classifications.json", ROOT / "examples" / "pgx"
    args: list[str | Path] = ["--classifications", labs, "--pgx", pgx / "calls.tsv"]
    args += ["--out", tmp_path / "o"]
    code, err = convert(capsys, EXAMPLE, *PATIENT, *args)
    assert code == 0, err
    assert (seen[0].classifications, seen[0].pharmacogenomics) == (labs, pgx / "calls.tsv")
    assert convert(capsys, EXAMPLE, *PATIENT, "--out", tmp_path / "o")[0] == 0
    assert (seen[1].classifications, seen[1].pharmacogenomics) == (None, None)


def test_help_names_the_formats_and_examples_of_the_input_files(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # argparse would wrap a file name at its hyphen
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("examples/lab-classifications.tsv", "PharmCAT", "examples/pgx/", "TSV or JSON"):
        assert needle in text


def test_classifications_and_pgx_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    labs, calls = ROOT / "examples" / "lab-classifications.tsv", ROOT / "examples" / "pgx"
    args: list[str | Path] = ["--classifications", labs, "--pgx", calls / "calls.tsv"]
    args += ["--validate", "--format", "collection", "--out", out]
    args += ["--indication", "BRCA1,TP53"]  # else their findings are secondary: withheld
    code, err = convert(capsys, VCF / "vep_sample.vcf", "--patient", "p-1", *args)
    assert code == 0, err
    resources = [e["resource"] for e in orjson.loads(out.read_bytes())["entry"]]
    tasks = [r for r in resources if r["resourceType"] == "Task"]
    assert tasks and all("medication-recommendation" in str(t["meta"]) for t in tasks)
    report = next(r for r in resources if r["resourceType"] == "DiagnosticReport")
    assert "(Example Genomics Laboratory 2025-06)" in report["conclusion"]
    bad = tmp_path / "calls.tsv"
    bad.write_text("gene\tdiplotype\nCYP2C19\t*1/*2\n")
    args = ["--patient", "p-1", "--pgx", bad, "--out", tmp_path / "o.json"]
    code, err = convert(capsys, VCF / "vep_sample.vcf", *args)
    assert code == 3
    assert str(bad) in err


def test_transcript_order_chooses_the_representative_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BRAF's MANE Select transcript by default; VEP's picked one when the user puts it first."""
    vep = ROOT / "tests" / "data" / "vcf" / "vep_sample.vcf"

    def braf_transcripts(*order: str) -> set[str]:
        out = tmp_path / f"{len(order)}.json"
        code, err = convert(capsys, vep, *PATIENT, "--format", "collection", *order,
                        "--out", out)  # fmt: skip
        assert code == 0, err
        resources = [e["resource"] for e in orjson.loads(out.read_bytes())["entry"]]
        return {
            c["valueCodeableConcept"]["coding"][0]["code"]
            for r in resources
            if r["resourceType"] == "Observation" and r["code"]["coding"][0]["code"] == "69548-6"
            for c in r["component"]
            if c["code"]["coding"][0]["code"] == "51958-7"  # transcript reference sequence
        }

    assert "ENST00000646891.2" in braf_transcripts()
    picked = braf_transcripts("--transcript-order", "picked,mane_select")
    assert "ENST00000288602.11" in picked and "ENST00000646891.2" not in picked


def test_convert_without_a_purpose_is_refused_and_audited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bundle.json"
    code, err = run(capsys, "convert", EXAMPLE, *PATIENT, "--out", out)
    assert code == 7
    assert "no purpose of use" in err
    assert not out.exists()
    [event] = (tmp_path / "bundle.json.audit.ndjson").read_bytes().splitlines()
    assert orjson.loads(event)["outcome"] == "8"


def test_convert_applies_the_patients_consent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, log = tmp_path / "bundle.json", tmp_path / "audit.ndjson"
    consents = ROOT / "tests" / "data" / "consent"
    args: list[str | Path] = ["--patient", "pat-1001", "--format", "collection", "--out", out]
    args += ["--consent", consents / "r4_secondary_findings_opt_in.json", "--audit-log", log]
    args += ["--birth-date", "1980-05-17", "--decided-at", "2026-11-22T12:00:00Z", "--validate"]
    code, err = convert(capsys, VCF / "secondary_findings.vcf", *args)
    assert code == 0, err
    resources = [e["resource"] for e in orjson.loads(out.read_bytes())["entry"]]
    labelled = [r for r in resources if "secondary-finding" in str(r["meta"]["security"])]
    assert labelled and "BRCA2" in orjson.dumps(labelled).decode()
    assert len(log.read_bytes().splitlines()) == 6  # the report, then BRCA2 HFE LDLR MUTYH TTN
    other = ["--patient", "p-2", "--consent", consents / "r4_secondary_findings_opt_in.json"]
    code, err = convert(capsys, EXAMPLE, *other, "--out", tmp_path / "o.json")
    assert code == 3
    assert "Consent.patient" in err and not (tmp_path / "o.json").exists()


def _unfiltered(tmp_path: Path) -> Path:
    """secondary_findings.vcf as the lab converts it for itself (no policy applied)."""
    from dataclasses import replace

    from adapter.convert import OutputFormat, convert_vcf
    from adapter.model import PatientRef

    out = tmp_path / "unfiltered.json"
    options = ConvertOptions(patient=PatientRef(id="pat-1001"))
    convert_vcf(
        VCF / "secondary_findings.vcf", out, replace(options, output_format=OutputFormat.COLLECTION)
    )
    return out


def test_decide_filters_a_bundle_and_prints_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle, out = _unfiltered(tmp_path), tmp_path / "filtered.json"
    consent = ROOT / "tests" / "data" / "consent" / "r4_secondary_findings_cancer.json"
    args: list[str | Path] = [bundle, *TREAT, "--consent", consent, "--out", out]
    args += ["--birth-date", "1980-05-17", "--decided-at", "2026-11-22T12:00:00Z"]
    assert main(["decide", *map(str, args)]) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["decision"] == "permit"
    assert {g: v["decision"] for g, v in printed["genes"].items()} == {
        "BRCA2": "permit", "HFE": "deny", "LDLR": "deny", "MUTYH": "permit", "TTN": "deny"
    }  # fmt: skip
    kept = orjson.dumps(orjson.loads(out.read_bytes())).decode()
    assert "c.5946del" in kept and "c.10000C>T" not in kept
    assert len((tmp_path / "filtered.json.audit.ndjson").read_bytes().splitlines()) == 6


def test_decide_refusals_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle, out = _unfiltered(tmp_path), tmp_path / "filtered.json"
    code, err = run(capsys, "decide", bundle, "--purpose", "HMARKT", "--out", out)
    assert code == 7 and "policy.never" in err and not out.exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, err = run(capsys, "decide", bad, *TREAT, "--out", out)
    assert code == 3 and "not valid JSON" in err
    code, err = run(capsys, "decide", bundle, "--purpose", "HRESCH", "--out", out)
    assert code == 2 and "de-identified" in err


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--birth-date", "17/05/1980", "birth date must be YYYY-MM-DD"),
        ("--recipient", "Dr Who", "recipient must be a reference"),
        ("--decided-at", "tomorrow", "not an ISO 8601 time"),
        ("--indication", "BRCA1;BRCA2", "neither an HGNC gene symbol"),
        ("--pseudonym-key-file", "/nonexistent/key", "cannot read the pseudonym key"),
    ],
)
def test_bad_disclosure_options_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, said: str
) -> None:
    out = tmp_path / "bundle.json"
    code, err = convert(capsys, EXAMPLE, *PATIENT, option, value, "--out", out)
    assert code == 2, err
    assert said in err
    assert not out.exists() and not (tmp_path / "bundle.json.audit.ndjson").exists()
