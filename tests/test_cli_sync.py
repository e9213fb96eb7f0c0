"""The CLI's sync commands without a server: keys, queueing, listing and operators' actions,
and their refusals (exit codes, nothing written)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapter.cli import main
from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import PatientRef

VCF = Path(__file__).resolve().parent / "data" / "vcf" / "snv.vcf"
MRN = ("https://hospital.test/mrn", "MRN-0042")


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An outbox and a server named by the environment alone (no servers file)."""
    monkeypatch.setenv("FHIR_GENOMICS_SERVER_URL", "http://127.0.0.1:9/fhir")
    monkeypatch.delenv("FHIR_GENOMICS_SERVERS", raising=False)
    return ["--outbox", f"sqlite:///{tmp_path / 'outbox.db'}"]


@pytest.fixture
def report(tmp_path: Path) -> Path:
    out = tmp_path / "report.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN[0], identifier_value=MRN[1]),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
    )
    convert_vcf(VCF, out, options)
    return out


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_keys_writes_a_private_key_for_its_owner_and_prints_the_jwks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "smart.pem"
    assert main(["keys", "--alg", "RS384", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    (jwk,) = json.loads(capsys.readouterr().out)["keys"]
    assert (jwk["kty"], jwk["alg"]) == ("RSA", "RS384") and "d" not in jwk and jwk["kid"]
    assert main(["keys", "--out", str(key)]) == 6  # never overwritten
    assert "File exists" in capsys.readouterr().err


def test_a_queued_report_is_listed_without_bundle_or_identifier(
    places: list[str], report: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = ["sync", str(report), *places, "--purpose", "TREAT", "--queue-only"]
    assert main(queue) == 0
    (queued,) = _lines(capsys.readouterr().out)
    assert main(queue) == 0  # the same report again: the same open job
    assert _lines(capsys.readouterr().out)[0]["id"] == queued["id"]
    assert main(["outbox", "list", *places, "--state", "pending"]) == 0
    out = capsys.readouterr().out
    (listed,) = _lines(out)
    assert (listed["id"], listed["server"], listed["state"]) == (queued["id"], "default", "pending")
    assert MRN[1] not in out and "bundle" not in listed


def test_operators_cancel_and_retry_by_job_id(
    places: list[str], report: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", str(report), *places, "--purpose", "TREAT", "--queue-only"]) == 0
    job = _lines(capsys.readouterr().out)[0]["id"]
    assert main(["outbox", "cancel", str(job), "--reason", "wrong patient", *places]) == 0
    cancelled = _lines(capsys.readouterr().out)[0]
    assert (cancelled["state"], cancelled["reason"]) == ("cancelled", "wrong patient")
    assert main(["outbox", "retry", str(job), *places]) == 0
    assert _lines(capsys.readouterr().out)[0]["state"] == "pending"
    assert main(["outbox", "retry", "no-such-job", *places]) == 2


def test_only_transaction_bundles_are_queued(
    places: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps({"resourceType": "Bundle", "type": "collection"}))
    assert main(["sync", str(collection), *places, "--purpose", "TREAT", "--queue-only"]) == 2
    assert "transaction" in capsys.readouterr().err
    assert main(["outbox", "list", *places]) == 0
    assert capsys.readouterr().out == ""


def test_an_unreachable_server_leaves_the_job_pending_with_its_error(
    places: list[str], report: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    servers = tmp_path / "servers.yaml"
    servers.write_text(
        "servers:\n  down:\n    base_url: http://127.0.0.1:9/fhir\n"
        "    max_attempts: 1\n    timeouts: {connect: 1, read: 1, write: 1, pool: 1}\n"
    )
    audit = ["--audit-log", str(tmp_path / "audit.ndjson")]
    sync = ["sync", str(report), places[0], places[1], "--servers", str(servers), *audit]
    assert main([*sync, "--purpose", "TREAT"]) == 8
    (job,) = _lines(capsys.readouterr().out)[-1:]
    assert job["state"] == "pending"
    assert job["last_error"]["type"] == "ServerUnavailable"
