"""Sync to an EHR that takes genetics only as HL7 v2: a queued report goes out as an ORU^R01
over MLLP (adapter.sync.mllp_client, the Sender's v2 path), on real sockets on 127.0.0.1.

The receiving end is our own MLLP listener, into an outbox of its own, where a real EHR's
interface engine would be; the ACKs a listener of ours never sends (AE from the receiver's
rules, AR for unsupported messages, silence, an ACK out of step) come from a scripted peer
that reads real frames and answers crafted ones."""

from __future__ import annotations

import asyncio
import socket
import ssl
import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hl7
import orjson
import pytest

from adapter.cli import main
from adapter.errors import MessageRefused, OptionsError, ServerUnavailable
from adapter.intake import Intake, Reading
from adapter.mllp import server_tls
from adapter.readers.fhir_report import read_report_bundle
from adapter.readers.hl7v2 import read_oru
from adapter.sync import Sender, client_for, load_servers, read_acknowledgement
from adapter.sync.config import ServerConfig
from adapter.sync.outbox import Job, JobState, JobSummary, Outbox, open_outbox
from adapter.sync.worker import job_keys, send_request
from tests.test_mllp import AUTHORITIES, CORRECTED, GERMLINE, Served
from tests.tls_certs import Certificates, make_certificates

SERVER = "ehr"
#: the germline example's MRN system (PID-3.4, ISO), which the v2 server names HOSPMRN
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.1"
START, END = b"\x0b", b"\x1c\r"
TIMEOUT_S = 30.0
#: what the scripted peer does with a frame: the bytes to answer (None: close unanswered)
Script = Callable[[bytes], bytes | None]


class Peer:
    """An MLLP peer on 127.0.0.1 answering each frame as its script says; it keeps the
    frames it was sent."""

    def __init__(self, script: Script, *, framed: bool = True) -> None:
        self.script, self.framed = script, framed
        self.frames: list[bytes] = []
        self.closing = False
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            if self.closing:
                conn.close()
                return
            with conn:
                frame = _read_frame(conn)
                if frame is None:
                    continue
                self.frames.append(frame)
                answer = self.script(frame)
                if answer is not None:
                    conn.sendall(START + answer + END if self.framed else answer)
                    conn.recv(1)  # until the sender closes

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing = True
        socket.create_connection(("127.0.0.1", self.port)).close()  # wakes accept()
        self.thread.join(timeout=TIMEOUT_S)
        self.sock.close()


def _read_frame(conn: socket.socket) -> bytes | None:
    conn.settimeout(TIMEOUT_S)
    data = b""
    while END not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data[data.index(START) + 1 : data.index(END)]


def ack(frame: bytes, code: str, *errors: str, control_id: str | None = None) -> bytes:
    """A crafted ACK of ``frame``: MSA-1 ``code`` and one ERR per ``errors`` (ERR-3^ERR-8)."""
    sent = hl7.parse(frame.decode("utf-8"))
    answered = str(sent.segment("MSH")[10]) if control_id is None else control_id
    segments = [
        "MSH|^~\\&|EHR||FHIR-GENOMICS||20261122101500+0000||ACK^R01^ACK|A1|P|2.5.1",
        f"MSA|{code}|{answered}|the EHR's words",
        *(
            f"ERR||OBX^3|{condition}^Condition^HL70357|E||||{words}"
            for condition, _, words in (e.partition("^") for e in errors)
        ),
    ]
    return "\r".join(segments).encode("ascii") + b"\r"


class Clock:
    """The sender's outbox's and worker's one clock, moved by the test."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    with open_outbox(f"sqlite:///{tmp_path / 'sender.db'}", now=clock) as opened:
        yield opened


@pytest.fixture
def ehr_outbox(tmp_path: Path) -> Iterator[Outbox]:
    with open_outbox(f"sqlite:///{tmp_path / 'ehr.db'}") as opened:
        yield opened


@pytest.fixture
def ehr(ehr_outbox: Outbox) -> Iterator[Served]:
    """Our MLLP listener as the EHR's interface engine, queueing what it takes."""
    served = Served(Intake(ehr_outbox, "ehr-fhir", send_request(purpose="TREAT"), _reading()))
    yield served
    served.stop()


def _reading() -> Reading:
    return Reading(AUTHORITIES)


def _servers(
    tmp_path: Path, port: int, *, scheme: str = "mllp", extra: str = ""
) -> dict[str, ServerConfig]:
    """The v2 server at ``port``, with ``extra`` settings (YAML lines of the server)."""
    path = tmp_path / "servers.yaml"
    path.write_text(
        f"""servers:
  {SERVER}:
    base_url: {scheme}://127.0.0.1:{port}
    timeouts: {{connect: 5, read: 5}}
    hl7v2:
      sending_application: FHIR-GENOMICS
      sending_facility: GENELAB
      receiving_application: EHR
      receiving_facility: HOSPITAL
      authorities: {{HOSPMRN: "{MRN_SYSTEM}"}}
{textwrap.indent(extra, "    ")}""",
        encoding="utf-8",
    )
    return load_servers(path)


def _queued(outbox: Outbox, message: bytes = GERMLINE, purpose: str = "TREAT") -> Job:
    """The message's report queued for the v2 server, ordered for the panel's genes (without
    them, the ACMG secondary-findings rules would hold BRCA1 and BRCA2)."""
    request = send_request(purpose=purpose, indication=["BRCA1,BRCA2"])
    intake = Intake(outbox, SERVER, request, _reading())
    (job,) = intake.message(message, "queued.hl7").jobs
    return job


#: every due job of the sender's outbox sent to these servers
Drain = Callable[[dict[str, ServerConfig]], list[JobSummary]]


@pytest.fixture
def drain(outbox: Outbox, clock: Clock, tmp_path: Path) -> Drain:
    def run(servers: dict[str, ServerConfig]) -> list[JobSummary]:
        sender = Sender(outbox, servers, audit_log=tmp_path / "audit.ndjson", now=clock)
        return asyncio.run(sender.drain())

    return run


def _bundle(job: Job) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(job.bundle)
    return loaded


def test_a_queued_report_reaches_a_v2_receiver_which_reads_back_the_same_report(
    tmp_path: Path, outbox: Outbox, drain: Drain, ehr: Served, ehr_outbox: Outbox
) -> None:
    job = _queued(outbox)
    (done,) = drain(_servers(tmp_path, ehr.port))
    assert done.state is JobState.SENT
    (received,) = ehr_outbox.list()
    taken = ehr_outbox.get(received.id)
    assert taken is not None
    assert (taken.report_key, taken.patient_key) == (job.report_key, job.patient_key)
    sent, back = read_report_bundle(_bundle(job)), read_report_bundle(_bundle(taken))
    assert back.variants == sent.variants
    assert (back.status, back.filler_order, back.placer_order) == (
        sent.status,
        sent.filler_order,
        sent.placer_order,
    )
    audit = (tmp_path / "audit.ndjson").read_text(encoding="utf-8").splitlines()
    permits = [e for e in map(orjson.loads, audit) if e["outcome"] == "0"]
    assert permits, "the send was decided, and audited"
    assert {e["purposeOfEvent"][0]["coding"][0]["code"] for e in permits} == {"TREAT"}


def test_a_correction_sent_after_its_original_updates_the_receivers_job(
    tmp_path: Path, outbox: Outbox, drain: Drain, ehr: Served, ehr_outbox: Outbox
) -> None:
    servers = _servers(tmp_path, ehr.port)
    _queued(outbox)
    drain(servers)
    _queued(outbox, CORRECTED)
    (done,) = drain(servers)
    assert done.state is JobState.SENT
    (received,) = ehr_outbox.list()  # the correction replaced the original's open job
    taken = ehr_outbox.get(received.id)
    assert taken is not None
    assert read_report_bundle(_bundle(taken)).status.value == "corrected"


def test_the_message_carries_the_servers_header_and_its_patient_by_mrn_alone(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: ack(frame, "AA")) as peer:
        _queued(outbox)
        drain(_servers(tmp_path, peer.port))
        (frame,) = peer.frames
    message = hl7.parse(frame.decode("utf-8"))
    msh, pid = message.segment("MSH"), message.segment("PID")
    assert [str(msh[i]) for i in (3, 4, 5, 6)] == ["FHIR-GENOMICS", "GENELAB", "EHR", "HOSPITAL"]
    assert str(msh[9]) == "ORU^R01^ORU_R01"
    assert str(pid[3]) == "MRN-004711^^^HOSPMRN&2.16.840.1.113883.19.5.1&ISO^MR"
    assert len(pid) <= 4, "no name, birth date or sex: the Bundle holds none"
    (report,) = read_oru(frame, source="sent", authorities=AUTHORITIES).reports
    assert report.variants


def test_a_resend_after_no_ack_carries_the_same_control_id(
    tmp_path: Path, outbox: Outbox, drain: Drain, clock: Clock
) -> None:
    answers = iter([None, "AA"])
    with Peer(lambda f: ack(f, code) if (code := next(answers)) else None) as peer:
        servers = _servers(tmp_path, peer.port)
        _queued(outbox)
        (first,) = drain(servers)
        assert first.state is JobState.PENDING
        assert first.last_error is not None
        assert "before the ACK" in first.last_error["message"]
        clock.at += timedelta(hours=2)  # past any backoff
        (second,) = drain(servers)
        assert second.state is JobState.SENT
        ids = {str(hl7.parse(f.decode("utf-8")).segment("MSH")[10]) for f in peer.frames}
    assert len(peer.frames) == 2
    assert len(ids) == 1


@pytest.mark.parametrize(
    ("code", "errors", "state"),
    [
        pytest.param("AE", ("103^unknown LOINC code",), JobState.FAILED, id="AE-parked"),
        pytest.param("CE", (), JobState.FAILED, id="CE-parked"),
        pytest.param("AR", ("207^database down",), JobState.PENDING, id="AR-later"),
        pytest.param("CR", (), JobState.PENDING, id="CR-later"),
        pytest.param("AR", ("200^no ORU here",), JobState.FAILED, id="AR-unsupported-parked"),
        pytest.param("AR", ("203^no 2.5.1",), JobState.FAILED, id="AR-version-parked"),
        pytest.param("AR", ("101^PID-3 missing",), JobState.FAILED, id="AR-content-parked"),
        pytest.param("AR", ("206^locked", "207^busy"), JobState.PENDING, id="AR-transient"),
    ],
)
def test_the_acks_code_and_conditions_decide_the_jobs_fate(
    tmp_path: Path,
    outbox: Outbox,
    drain: Drain,
    *,
    code: str,
    errors: tuple[str, ...],
    state: JobState,
) -> None:
    with Peer(lambda frame: ack(frame, code, *errors)) as peer:
        _queued(outbox)
        (done,) = drain(_servers(tmp_path, peer.port))
    assert done.state is state
    assert done.last_error is not None
    message = done.last_error["message"]
    assert f"({code}: the EHR's words" in message
    for error in errors:
        assert error.partition("^")[2] in message
    if state is JobState.FAILED:
        assert done.last_error["type"] == MessageRefused.__name__
        assert done.last_error["outcome"]["issue"][0]["code"] == "processing"


def test_an_ack_of_another_message_parks_the_job(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: ack(frame, "AA", control_id="SOMEONE-ELSES")) as peer:
        _queued(outbox)
        (done,) = drain(_servers(tmp_path, peer.port))
    assert done.state is JobState.FAILED
    assert done.last_error is not None
    assert "answers message 'SOMEONE-ELSES'" in done.last_error["message"]


def test_an_answer_that_is_no_ack_parks_the_job(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: b"HTTP/1.1 400 Bad Request\r\n") as peer:
        _queued(outbox)
        (done,) = drain(_servers(tmp_path, peer.port))
    assert done.state is JobState.FAILED
    assert done.last_error is not None
    assert "no HL7 v2 ACK" in done.last_error["message"]


def test_an_answer_outside_an_mllp_frame_parks_the_job(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: b"HTTP/1.1 400 Bad Request\r\n\r\n\x1c\r", framed=False) as peer:
        _queued(outbox)
        (done,) = drain(_servers(tmp_path, peer.port))
    assert done.state is JobState.FAILED
    assert done.last_error is not None
    assert "no MLLP frame" in done.last_error["message"]


def test_no_receiver_listening_means_later(tmp_path: Path, outbox: Outbox, drain: Drain) -> None:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]  # bound and closed: nothing listens there
    _queued(outbox)
    (done,) = drain(_servers(tmp_path, port))
    assert done.state is JobState.PENDING
    assert done.last_error is not None
    assert "cannot connect" in done.last_error["message"]


def test_a_receiver_silent_past_the_read_timeout_means_later(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    quiet = threading.Event()

    def silent(frame: bytes) -> None:
        quiet.wait(TIMEOUT_S)  # holds the connection open, unanswered, until the test ends

    with Peer(silent) as peer:
        servers = _servers(tmp_path, peer.port)
        fast = {SERVER: _with_read_timeout(servers[SERVER], 0.5)}
        _queued(outbox)
        (done,) = drain(fast)
        quiet.set()
    assert done.state is JobState.PENDING
    assert done.last_error is not None
    assert "no ACK within 0.5 s" in done.last_error["message"]


def _with_read_timeout(config: ServerConfig, seconds: float) -> ServerConfig:
    return replace(config, timeouts=replace(config.timeouts, read=seconds))


def test_a_send_the_policy_denies_is_cancelled_and_never_connects(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: ack(frame, "AA")) as peer:
        _queued(outbox, purpose="HMARKT")
        (done,) = drain(_servers(tmp_path, peer.port))
        assert peer.frames == []
    assert done.state is JobState.CANCELLED


def test_a_report_v2_cannot_carry_is_parked_and_never_connects(
    tmp_path: Path, outbox: Outbox, drain: Drain
) -> None:
    with Peer(lambda frame: ack(frame, "AA")) as peer:
        job = _queued(outbox)
        bundle = _bundle(job)
        for entry in bundle["entry"]:
            subject = entry["resource"].get("subject")
            if subject is not None:
                subject["reference"] = "Patient/123"  # a server id: no PID-3 to write
        request = send_request(purpose="TREAT", indication=["BRCA1,BRCA2"])
        outbox.enqueue(
            SERVER, "other|report", job.patient_key, orjson.dumps(bundle), request=request
        )
        outbox.cancel(job.id, "replaced by the test's copy")
        (done,) = drain(_servers(tmp_path, peer.port))
        assert peer.frames == []
    assert done.state is JobState.FAILED
    assert done.last_error is not None
    assert "PID-3" in done.last_error["message"]


def test_a_v2_server_has_no_fhir_client(tmp_path: Path) -> None:
    (config,) = _servers(tmp_path, 2575).values()
    with pytest.raises(OptionsError, match="takes HL7 v2 over MLLP"):
        client_for(config)


@pytest.mark.parametrize(
    "answer",
    [b"", b"garbage", b"MSH|^~\\&|EHR\rPID|1\r"],
    ids=["empty", "no-msh", "no-msa"],
)
def test_an_answer_without_msh_and_msa_is_no_ack(answer: bytes) -> None:
    with pytest.raises(MessageRefused, match="no HL7 v2 ACK"):
        read_acknowledgement(answer, "peer")


def test_an_acks_words_are_unescaped_and_latin1_is_read() -> None:
    data = "MSH|^~\\&|EHR\rMSA|AE|C1|fehlt \\T\\ Müller\rERR||PID^3|101\r".encode("latin-1")
    read = read_acknowledgement(data, "peer")
    assert (read.code, read.control_id, read.conditions) == ("AE", "C1", ("101",))
    assert read.text == "fehlt & Müller"


def test_the_sync_command_sends_a_bundle_to_a_v2_receiver(
    tmp_path: Path,
    outbox: Outbox,
    ehr: Served,
    ehr_outbox: Outbox,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``fhir-genomics sync`` to a server of the servers file whose base URL is mllp://."""
    bundle = tmp_path / "report.json"
    bundle.write_bytes(_queued(outbox).bundle)
    _servers(tmp_path, ehr.port)
    argv = ["sync", str(bundle), "--servers", str(tmp_path / "servers.yaml"), "--server", SERVER]
    argv += ["--purpose", "TREAT", "--indication", "BRCA1,BRCA2"]
    argv += ["--outbox", f"sqlite:///{tmp_path / 'cli.db'}"]
    argv += ["--audit-log", str(tmp_path / "cli-audit.ndjson")]
    assert main(argv) == 0
    queued, sent = map(orjson.loads, capsys.readouterr().out.splitlines())
    assert (queued["state"], sent["state"], sent["server"]) == ("pending", "sent", SERVER)
    (received,) = ehr_outbox.list()
    assert received.report_key == read_report_key(bundle)


def read_report_key(path: Path) -> str:
    report, _ = job_keys(orjson.loads(path.read_bytes()))
    return report


def test_a_refusal_without_our_control_id_is_still_a_refusal() -> None:
    """A receiver that could not read our MSH answers AR with MSA-2 empty: not out of step."""
    read = read_acknowledgement(b"MSH|^~\\&|EHR\rMSA|AR|\rERR||MSH^1|207\r", "peer")
    with pytest.raises(ServerUnavailable, match="for now"):
        read.settle("C1", "peer")
    taken = read_acknowledgement(b"MSH|^~\\&|EHR\rMSA|AA|\r", "peer")
    with pytest.raises(MessageRefused, match="answers message ''"):
        taken.settle("C1", "peer")


# ---- MLLP over TLS ------------------------------------------------------------------------------


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    folder = tmp_path / "certs"
    folder.mkdir()
    return make_certificates(folder)


def _tls_ehr(ehr_outbox: Outbox, tls: ssl.SSLContext) -> Served:
    return Served(Intake(ehr_outbox, "ehr-fhir", send_request(purpose="TREAT"), _reading()), tls)


def test_a_report_reaches_a_receiver_over_tls_whose_certificate_is_verified(
    tmp_path: Path, outbox: Outbox, drain: Drain, ehr_outbox: Outbox, certificates: Certificates
) -> None:
    served = _tls_ehr(ehr_outbox, server_tls(certificates.server_cert, certificates.server_key))
    try:
        trusted = f"tls: {{ca_file: {certificates.ca}}}\n"
        _queued(outbox)
        (done,) = drain(_servers(tmp_path, served.port, scheme="mllps", extra=trusted))
        assert done.state is JobState.SENT
        assert len(ehr_outbox.list()) == 1
        _queued(outbox, CORRECTED)
        (untrusted,) = drain(_servers(tmp_path, served.port, scheme="mllps"))  # system CAs
    finally:
        served.stop()
    assert untrusted.state is JobState.PENDING
    assert untrusted.last_error is not None
    assert "certificate verify failed" in untrusted.last_error["message"]
    assert len(ehr_outbox.list()) == 1  # the untrusted connection delivered nothing


def test_mutual_tls_takes_only_a_client_the_ca_certified(
    tmp_path: Path, outbox: Outbox, drain: Drain, ehr_outbox: Outbox, certificates: Certificates
) -> None:
    tls = server_tls(certificates.server_cert, certificates.server_key, certificates.ca)
    served = _tls_ehr(ehr_outbox, tls)
    try:
        anonymous = f"tls: {{ca_file: {certificates.ca}}}\n"
        _queued(outbox)
        (refused,) = drain(_servers(tmp_path, served.port, scheme="mllps", extra=anonymous))
        assert ehr_outbox.list() == []
        known = (
            f"tls: {{ca_file: {certificates.ca}, cert_file: {certificates.client_cert}, "
            f"key_file: {certificates.client_key}}}\n"
        )
        _queued(outbox, CORRECTED)
        (sent,) = drain(_servers(tmp_path, served.port, scheme="mllps", extra=known))
    finally:
        served.stop()
    assert refused.state is JobState.PENDING
    assert refused.last_error is not None
    assert "does the receiver take our certificate" in refused.last_error["message"]
    assert sent.state is JobState.SENT
    assert len(ehr_outbox.list()) == 1


def test_a_listener_refuses_unusable_tls_files(certificates: Certificates) -> None:
    with pytest.raises(OptionsError) as caught:
        server_tls(certificates.server_cert, certificates.client_key)  # a key of another cert
    assert caught.value.field == "--tls-cert"
    with pytest.raises(OptionsError) as caught:
        server_tls(certificates.server_cert, certificates.server_key, certificates.server_key)
    assert caught.value.field == "--tls-client-ca"
