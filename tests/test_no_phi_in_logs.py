"""No PHI in logs: a whole conversion and sync, through the CLI, against a real server, logged
at DEBUG by every library, never writes the patient's identifier, name or birth date to the
log (or to the CLI's output)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sekmet_server import Sekmet

from adapter.cli import main

VCF = Path(__file__).resolve().parent / "data" / "vcf" / "secondary_findings.vcf"
MRN_SYSTEM = "https://hospital.test/mrn"


def test_a_conversion_and_sync_log_no_identifier_name_or_birth_date(
    sekmet: Sekmet,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mrn = f"MRN-{uuid.uuid4().hex[:10]}"
    name, birth_date = f"Lovelace{uuid.uuid4().hex[:6]}", "1971-03-14"
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": MRN_SYSTEM, "value": mrn}],
        "name": [{"family": name, "given": ["Ada"]}],
        "birthDate": birth_date,
    }
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    assert httpx.post(f"{sekmet.base}/Patient", json=patient, headers=opened).status_code == 201
    token = tmp_path / "token"
    token.write_text(sekmet.bearer_token)
    servers = tmp_path / "servers.yaml"
    servers.write_text(
        f"servers:\n  hospital:\n    base_url: {sekmet.base}\n"
        f"    auth: {{type: bearer, token_file: {token}}}\n    max_entries: 7\n"
    )
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)  # every logger, every level
    bundle = tmp_path / "report.json"
    converted = main(
        ["convert", str(VCF), "--patient-identifier", f"{MRN_SYSTEM}|{mrn}", "--purpose", "TREAT",
         "--issued", datetime(2026, 1, 15, tzinfo=UTC).isoformat(), "--out", str(bundle)]
    )  # fmt: skip
    assert converted == 0
    places = ["--outbox", f"sqlite:///{tmp_path / 'outbox.db'}", "--servers", str(servers)]
    assert main(["sync", str(bundle), *places, "--purpose", "TREAT"]) == 0
    assert main(["outbox", "list", *places]) == 0
    printed = capsys.readouterr()
    logged = caplog.text
    assert "HTTP Request" in logged  # the libraries did log, at DEBUG
    for secret in (mrn, name, birth_date):
        assert secret not in logged, f"{secret!r} in the log"
        assert secret not in printed.out + printed.err, f"{secret!r} printed"
