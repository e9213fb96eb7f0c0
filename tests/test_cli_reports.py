"""The CLI's lab report commands (adapter.cli_reports): ``ingest`` on a drop folder (jobs
queued, files moved, errors written beside the refused; a deployment's error leaves the files),
``convert-report`` (Bundles that validate, one per report), and ``mllp`` as a process: its ACK
survives a kill -9 right after it, and SIGTERM stops it gracefully."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapter.cli import main
from adapter.errors import OutboxError
from adapter.readers.hl7v2 import read_oru
from adapter.sync.outbox import JobState, Outbox, open_outbox
from adapter.validation import validate_path
from tests.tls_certs import make_certificates

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "hl7v2"
PHENOPACKETS = ROOT / "examples" / "phenopackets"
BAD = ROOT / "tests" / "data" / "hl7v2"
AUTHORITY = "HOSP=https://hospital.example.org/mrn"
SUBJECTS = "https://lab.example.org/subjects"
GERMLINE = (EXAMPLES / "germline-panel.hl7").read_bytes()
TIMEOUT_S = 60.0


def fhir_genomics(*argv: str) -> int:
    """``fhir-genomics`` in this process: its exit code."""
    return main(list(argv))


#: ``fhir-genomics`` in a process of its own
CLI = [sys.executable, "-m", "adapter.cli"]


@pytest.fixture
def outbox_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An outbox, and a server named by the environment alone (no servers file)."""
    monkeypatch.setenv("FHIR_GENOMICS_SERVER_URL", "http://127.0.0.1:9/fhir")
    monkeypatch.delenv("FHIR_GENOMICS_SERVERS", raising=False)
    monkeypatch.delenv("FHIR_GENOMICS_OUTBOX", raising=False)
    return f"sqlite:///{tmp_path / 'outbox.db'}"


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def dropped(folder: Path, name: str, data: bytes, age_s: float) -> Path:
    """A file as a sender leaves it, last modified ``age_s`` seconds ago."""
    path = folder / name
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def intake_options(outbox_url: str) -> list[str]:
    return ["--outbox", outbox_url, "--purpose", "TREAT", "--authority", AUTHORITY]


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def jobs(outbox_url: str) -> list[dict[str, Any]]:
    """Each job's summary and its DiagnosticReport."""
    with open_outbox(outbox_url) as outbox:
        return [job_report(outbox, s.id) | {"state": s.state} for s in outbox.list()]


def job_report(outbox: Outbox, job_id: str) -> dict[str, Any]:
    job = outbox.get(job_id)
    assert job is not None
    bundle = orjson.loads(job.bundle)
    assert bundle["type"] == "transaction"
    (report,) = (
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    return {"id": job_id, "status": report["status"], "request": job.request}


# ---- ingest --------------------------------------------------------------------------------------


def test_ingest_once_queues_the_examples_and_fails_the_bad_file(
    drop: Path, outbox_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # oldest first: the original before its correction, whatever their names
    dropped(drop, "a-correction.hl7", (EXAMPLES / "germline-panel-corrected.hl7").read_bytes(), 60)
    dropped(drop, "b-original.HL7", GERMLINE, 90)
    dropped(drop, "somatic.oru", (EXAMPLES / "somatic-tumor.hl7").read_bytes(), 50)
    dropped(drop, "compound.txt", (EXAMPLES / "compound-heterozygote.hl7").read_bytes(), 40)
    dropped(drop, "de-novo.json", (PHENOPACKETS / "de-novo.json").read_bytes(), 30)
    dropped(drop, "bad.hl7", (BAD / "unknown_loinc_in_variant.hl7").read_bytes(), 20)
    dropped(drop, "also-bad.hl7", (BAD / "wrong_event.hl7").read_bytes(), 10)
    # not complete yet: a temporary name, a hidden one, one just written
    waiting = [
        dropped(drop, "next.hl7.part", GERMLINE, 60),
        dropped(drop, ".next.hl7", GERMLINE, 60),
        dropped(drop, "fresh.hl7", GERMLINE, 0),
    ]
    code = fhir_genomics(
        "ingest", str(drop), "--once", *intake_options(outbox_url), "--subject-system", SUBJECTS
    )
    assert code == 3  # the first refusal's: bad input
    taken = ["b-original.HL7", "a-correction.hl7", "somatic.oru", "compound.txt", "de-novo.json"]
    printed = lines(capsys.readouterr().out)
    assert [line["file"] for line in printed] == [*taken, "bad.hl7", "also-bad.hl7"]
    assert sorted(p.name for p in (drop / "done").iterdir()) == sorted(taken)
    assert sorted(p.name for p in (drop / "failed").iterdir()) == [
        "also-bad.hl7", "also-bad.hl7.error.json", "bad.hl7", "bad.hl7.error.json",
    ]  # fmt: skip
    assert all(path.exists() for path in waiting)
    # the correction replaced the original's open job: four reports, four jobs
    queued = jobs(outbox_url)
    assert len(queued) == 4 and {job["state"] for job in queued} == {JobState.PENDING}
    assert printed[0]["jobs"] == printed[1]["jobs"]
    assert job_report_status(queued, printed[1]["jobs"][0]) == "corrected"
    assert {job["request"]["purpose"] for job in queued} == {"TREAT"}
    outcome = json.loads((drop / "failed" / "bad.hl7.error.json").read_text())
    (issue,) = outcome["issue"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert (issue["code"], issue["expression"]) == ("structure", ["OBX-3"])
    assert "MRN-BAD-1234" not in issue["diagnostics"]


def job_report_status(queued: list[dict[str, Any]], job_id: str) -> str:
    (status,) = (job["status"] for job in queued if job["id"] == job_id)
    return str(status)


def test_ingest_once_of_a_complete_folder_exits_0_and_keeps_both_copies_of_a_name(
    drop: Path, outbox_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dropped(drop, "report.hl7", GERMLINE, 10)
    assert fhir_genomics("ingest", str(drop), "--once", *intake_options(outbox_url)) == 0
    dropped(drop, "report.hl7", GERMLINE, 10)  # the same name again
    assert fhir_genomics("ingest", str(drop), "--once", *intake_options(outbox_url)) == 0
    assert sorted(p.name for p in (drop / "done").iterdir()) == ["report-2.hl7", "report.hl7"]
    assert [line["moved"] for line in lines(capsys.readouterr().out)] == [
        "done/report.hl7",
        "done/report-2.hl7",
    ]
    assert len(jobs(outbox_url)) == 1  # the same report: its open job


def test_ingest_leaves_the_files_when_the_outbox_cannot_be_written(
    drop: Path, outbox_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OutboxError("the outbox database failed: disk I/O error")

    monkeypatch.setattr(Outbox, "enqueue", failing)
    dropped(drop, "report.hl7", GERMLINE, 10)
    code = fhir_genomics("ingest", str(drop), "--once", *intake_options(outbox_url))
    assert code == OutboxError.exit_code
    assert "disk I/O error" in capsys.readouterr().err
    assert (drop / "report.hl7").exists()
    assert not (drop / "failed").exists() and not (drop / "done").exists()


def test_ingest_fails_a_file_an_unexpected_error_stops_and_names_only_its_type(
    drop: Path,
    outbox_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("patient MRN-004711 broke it")

    monkeypatch.setattr(Outbox, "enqueue", broken)
    dropped(drop, "report.hl7", GERMLINE, 10)
    assert fhir_genomics("ingest", str(drop), "--once", *intake_options(outbox_url)) == 1
    error = (drop / "failed" / "report.hl7.error.json").read_text()
    assert "unexpectedly" in error and "MRN-004711" not in error
    assert "RuntimeError" in caplog.text and "MRN-004711" not in caplog.text


def test_ingest_of_a_phenopacket_without_subject_system_is_an_options_error(
    drop: Path, outbox_url: str
) -> None:
    dropped(drop, "case.json", (PHENOPACKETS / "recessive.json").read_bytes(), 10)
    assert fhir_genomics("ingest", str(drop), "--once", *intake_options(outbox_url)) == 2
    assert (drop / "case.json").exists()


def test_ingest_of_a_missing_folder_is_an_options_error(tmp_path: Path, outbox_url: str) -> None:
    missing = tmp_path / "missing"
    assert fhir_genomics("ingest", str(missing), "--once", *intake_options(outbox_url)) == 2


# ---- convert-report ------------------------------------------------------------------------------


def test_convert_report_writes_a_bundle_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "somatic.json"
    source = str(EXAMPLES / "somatic-tumor.hl7")
    assert fhir_genomics("convert-report", source, "-o", str(out), "--authority", AUTHORITY) == 0
    bundle = json.loads(out.read_bytes())
    assert bundle["type"] == "transaction"
    assert validate_path(out).errors == []


def test_to_hl7v2_writes_back_the_message_a_bundle_was_made_from(tmp_path: Path) -> None:
    """convert-report, then to-hl7v2: the ORU^R01 read again holds the same report (the
    round trip itself is tested field by field in test_hl7v2_roundtrip)."""
    source, bundle, message = EXAMPLES / "germline-panel.hl7", tmp_path / "b.json", tmp_path / "m"
    authority = ("--authority", AUTHORITY)
    assert fhir_genomics("convert-report", str(source), "-o", str(bundle), *authority) == 0
    assert fhir_genomics("to-hl7v2", str(bundle), "-o", str(message), *authority) == 0
    again = read_oru(message.read_bytes(), authorities=dict([AUTHORITY.split("=", 1)])).reports
    (original,) = read_oru(source.read_bytes(), authorities=dict([AUTHORITY.split("=", 1)])).reports
    assert [v.consequence for v in again[0].variants] == [v.consequence for v in original.variants]
    assert again[0].report_key == original.report_key
    bundle.write_text("[]")
    assert fhir_genomics("to-hl7v2", str(bundle)) == 3


def test_convert_report_writes_one_output_per_report_of_a_message(tmp_path: Path) -> None:
    head, group = GERMLINE.split(b"\rORC|", 1)
    second = group.replace(b"FIL-GX-77821", b"FIL-GX-77822")
    message = tmp_path / "two.hl7"
    message.write_bytes(head + b"\rORC|" + group + b"ORC|" + second)
    out = tmp_path / "report.json"
    argv = ("convert-report", str(message), "-o", str(out), "--format", "collection")
    assert fhir_genomics(*argv) == 0
    written = [out, tmp_path / "report-2.json"]
    assert set(tmp_path.glob("report*.json")) == set(written)
    fillers = []
    for path in written:
        bundle = json.loads(path.read_bytes())
        assert bundle["type"] == "collection"
        assert validate_path(path).errors == []
        (report,) = (
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "DiagnosticReport"
        )
        fillers.append([i["value"] for i in report["identifier"] if "type" in i])
    assert fillers == [["FIL-GX-77821"], ["FIL-GX-77822"]]


def test_convert_report_without_out_prints_one_bundle_per_line(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    packet = str(PHENOPACKETS / "de-novo.json")
    assert fhir_genomics("convert-report", packet, "--subject-system", SUBJECTS) == 0
    (bundle,) = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (("--format", "ndjson"), 2),  # NDJSON is a folder: it needs -o
        ((), 3),  # HOSP is the deployment's namespace: unmapped without --authority
    ],
)
def test_convert_report_refusals(
    argv: tuple[str, ...], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fhir_genomics("convert-report", str(EXAMPLES / "somatic-tumor.hl7"), *argv) == code
    assert capsys.readouterr().out == ""


def test_convert_report_of_a_phenopacket_needs_its_subject_system(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert (
        fhir_genomics("convert-report", str(PHENOPACKETS / "recessive.json"), "-o", str(out)) == 2
    )
    assert not out.exists()


# ---- the processes -------------------------------------------------------------------------------


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIR_GENOMICS_")}
    return env | {"FHIR_GENOMICS_SERVER_URL": "http://127.0.0.1:9/fhir"}


@pytest.fixture
def listener(
    outbox_url: str, environment: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``fhir-genomics mllp --port 0`` in a process of its own, and the port it logged."""
    with _listening(intake_options(outbox_url), environment) as running:
        yield running


@contextlib.contextmanager
def _listening(
    options: list[str], environment: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``fhir-genomics mllp --port 0 OPTIONS`` running, and the port it logged; killed after."""
    argv = [*CLI, "mllp", "--port", "0", *options]
    process = subprocess.Popen(argv, env=environment, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        yield process, _logged_port(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT_S)
        assert process.stderr is not None
        process.stderr.close()


def _logged_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stderr is not None
    while line := process.stderr.readline().decode():
        if "listener on 127.0.0.1:" in line:
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("the listener exited before it listened")


def _exchange(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(b"\x0b" + message + b"\x1c\r")
    answer = b""
    while not answer.endswith(b"\x1c\r"):
        chunk = sock.recv(65536)
        assert chunk, "closed without an ACK"
        answer += chunk
    return answer


def test_an_acknowledged_message_survives_a_kill_right_after_its_ack(
    listener: tuple[subprocess.Popen[bytes], int], outbox_url: str
) -> None:
    process, port = listener
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        answer = _exchange(sock, GERMLINE)
        process.send_signal(signal.SIGKILL)
    assert b"\rMSA|AA|GL-20250612-0001\r" in answer
    assert process.wait(TIMEOUT_S) == -signal.SIGKILL
    (job,) = jobs(outbox_url)
    assert (job["state"], job["status"]) == (JobState.PENDING, "final")


def test_sigterm_stops_the_listener_gracefully(
    listener: tuple[subprocess.Popen[bytes], int], outbox_url: str
) -> None:
    process, port = listener
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        assert b"\rMSA|AA|" in _exchange(sock, GERMLINE)
        process.send_signal(signal.SIGTERM)
        assert sock.recv(1) == b""  # the idle connection is closed
    assert process.wait(TIMEOUT_S) == 0
    assert process.stderr is not None
    assert "MLLP listener stopped" in process.stderr.read().decode()
    assert len(jobs(outbox_url)) == 1


def test_a_listener_with_workers_over_tls_takes_a_message_and_stops_on_sigterm(
    tmp_path: Path, outbox_url: str, environment: dict[str, str]
) -> None:
    certificates = make_certificates(tmp_path)
    tls = ["--tls-cert", str(certificates.server_cert), "--tls-key", str(certificates.server_key)]
    options = ["--workers", "2", *tls, *intake_options(outbox_url)]
    with _listening(options, environment) as (process, port):
        context = ssl.create_default_context(cafile=certificates.ca)
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as plain,
            context.wrap_socket(plain, server_hostname="127.0.0.1") as sock,
        ):
            assert b"\rMSA|AA|GL-20250612-0001\r" in _exchange(sock, GERMLINE)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0
    assert len(jobs(outbox_url)) == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (["--tls-cert", "cert.pem"], "--tls-cert"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca"),
        (["--tls-cert", "absent.pem", "--tls-key", "absent.key"], "--tls-cert"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_listener_options_are_refused_before_listening(
    outbox_url: str, options: list[str], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fhir_genomics("mllp", "--port", "0", *options, *intake_options(outbox_url)) == 2
    assert field in capsys.readouterr().err


def test_ingest_polls_until_sigterm(
    drop: Path, outbox_url: str, environment: dict[str, str]
) -> None:
    argv = [*CLI, "ingest", str(drop), "--every", "0.2"]
    process = subprocess.Popen(
        [*argv, *intake_options(outbox_url)], env=environment, stdout=subprocess.PIPE, cwd=ROOT
    )
    try:
        temporary = drop / "report.hl7.part"
        temporary.write_bytes(GERMLINE)
        temporary.rename(drop / "report.hl7")  # as an engine hands a file over
        deadline = time.monotonic() + TIMEOUT_S
        while not (drop / "done" / "report.hl7").exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT_S)
        assert process.stdout is not None
        printed = lines(process.stdout.read().decode())
        process.stdout.close()
    assert [line["moved"] for line in printed] == ["done/report.hl7"]
    assert len(jobs(outbox_url)) == 1
