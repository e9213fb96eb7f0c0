"""Nothing lost, nothing twice: a large sync through the real CLI is killed with SIGKILL in
mid-flight, started again, and sekmet-fhir ends with every resource exactly once, with the
outbox in SQLite and in PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from postgres_server import new_database
from sekmet_server import Sekmet

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.model import PatientRef
from adapter.sync.outbox import JobState, open_outbox

MRN = "https://hospital.test/mrn"
VARIANTS = 1500
CHUNK = 25
LEASE_S = 4.0
CLI = [sys.executable, "-m", "adapter.cli"]
KILL_AFTER_CHUNKS = 6
WAIT_S = 300


def _vcf(path: Path) -> Path:
    """A germline panel of VARIANTS heterozygous SNVs on chromosome 1."""
    header = [
        "##fileformat=VCFv4.2",
        "##reference=GRCh38",
        "##contig=<ID=chr1,length=248956422>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
    ]
    rows = [f"chr1\t{1_000_000 + 10 * i}\t.\tA\tG\t50\tPASS\t.\tGT\t0/1" for i in range(VARIANTS)]
    path.write_text("\n".join(header + rows) + "\n")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'outbox.db'}"
    else:
        yield new_database(request.getfixturevalue("postgres_url"))


class Cli:
    """The real command line in a child process; its output in files, read after it ends."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path) -> None:
        name = uuid.uuid4().hex
        self.out, self.err = folder / f"{name}.out", folder / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen([*CLI, *args], env=env, stdout=out, stderr=err)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def errors(self) -> str:
        return self.err.read_text()


def _progress(url: str) -> dict[str, Any]:
    with open_outbox(url) as outbox:
        (job,) = outbox.list()
        return {"state": job.state, "attempts": job.attempts, **job.progress}


def test_a_sync_killed_mid_flight_and_restarted_delivers_everything_once(
    sekmet: Sekmet, outbox_url: str, tmp_path: Path
) -> None:
    value = f"KILL-{uuid.uuid4()}"
    opened = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    fhir = httpx.Client(base_url=sekmet.base, headers=opened, timeout=60)
    body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
    assert fhir.post("/Patient", json=body).status_code == 201
    bundle = tmp_path / "report.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN, identifier_value=value),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
    )
    convert_vcf(_vcf(tmp_path / "panel.vcf"), bundle, options)
    entries = orjson.loads(bundle.read_bytes())["entry"]
    token = tmp_path / "token"
    token.write_text(sekmet.bearer_token)
    servers = tmp_path / "servers.yaml"
    servers.write_text(
        f"servers:\n  sekmet:\n    base_url: {sekmet.base}\n"
        f"    auth: {{type: bearer, token_file: {token}}}\n    max_entries: {CHUNK}\n"
    )
    env = {**os.environ, "FHIR_GENOMICS_AUDIT_LOG": str(tmp_path / "audit.ndjson")}
    places = ["--outbox", outbox_url, "--servers", str(servers)]
    queued = Cli(
        ["sync", str(bundle), *places, "--purpose", "TREAT", "--queue-only"], env, tmp_path
    )
    assert queued.wait(60) == 0, queued.errors()

    send = ["outbox", "send", *places, "--lease-seconds", str(LEASE_S)]
    first = Cli(send, env, tmp_path)
    deadline = time.monotonic() + WAIT_S
    while len(_progress(outbox_url).get("chunks", [])) < KILL_AFTER_CHUNKS:
        assert first.alive(), first.errors()
        assert time.monotonic() < deadline, "the first sender made no progress"
        time.sleep(0.05)
    first.process.send_signal(signal.SIGKILL)
    first.wait(30)
    killed = _progress(outbox_url)
    assert killed["state"] == JobState.SENDING
    assert KILL_AFTER_CHUNKS <= len(killed["chunks"]) < len(entries) / CHUNK

    time.sleep(LEASE_S + 0.5)  # the dead sender's lease runs out
    second = Cli(send, env, tmp_path)
    assert second.wait(WAIT_S) == 0, second.errors()
    assert orjson.loads(second.out.read_bytes().splitlines()[-1])["state"] == "sent"
    done = _progress(outbox_url)
    assert (done["state"], done["attempts"]) == (JobState.SENT, 2)
    assert len(done["chunks"]) == -(-len(entries) // CHUNK)

    patient = fhir.get("/Patient", params={"identifier": f"{MRN}|{value}"}).json()
    reference = f"Patient/{patient['entry'][0]['resource']['id']}"
    stored = _all(fhir, "Observation", {"subject": reference})
    expected = [e for e in entries if e["resource"]["resourceType"] == "Observation"]
    identifiers = [o["identifier"][0]["value"] for o in stored]
    assert len(identifiers) == len(set(identifiers)) == len(expected)
    assert set(identifiers) == {e["resource"]["identifier"][0]["value"] for e in expected}
    fhir.close()


def _all(fhir: httpx.Client, kind: str, params: dict[str, str]) -> list[dict[str, Any]]:
    page = fhir.get(f"/{kind}", params={**params, "_count": "500"}).json()
    found = []
    while True:
        found += [e["resource"] for e in page.get("entry", [])]
        link = next((x["url"] for x in page.get("link", []) if x["relation"] == "next"), None)
        if link is None:
            return found
        page = fhir.get(link).json()
