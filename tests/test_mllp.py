"""The MLLP listener (adapter.mllp) over real sockets on 127.0.0.1, into a real SQLite outbox:
one ACK per message and in order, AA only once the job is committed, the reader's AE/AR with
its ERR for a bad message, broken frames and failures that never stop the listener, and a
graceful stop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import orjson
import pytest

from adapter.errors import MessageError, OptionsError, OutboxError
from adapter.intake import Intake, Reading
from adapter.mllp import MllpListener
from adapter.readers.hl7v2 import acknowledgement, read_header, read_oru
from adapter.sync.outbox import JobState, Outbox, open_outbox
from adapter.sync.worker import send_request

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "hl7v2"
BAD = ROOT / "tests" / "data" / "hl7v2"
#: the somatic example's PID-3.4 gives only a namespace ID (as in tests/test_hl7v2_reader.py)
AUTHORITIES = {"HOSP": "https://hospital.example.org/mrn"}
SERVER = "hospital"
GERMLINE = (EXAMPLES / "germline-panel.hl7").read_bytes()
CORRECTED = (EXAMPLES / "germline-panel-corrected.hl7").read_bytes()
#: identifiers, names and dates of the germline example, which no log line may hold
PHI = ("MRN-004711", "LAB-PT-8812", "FIL-GX-77821", "PLC-2025-0042", "Doe", "Jane", "19800415")
START, END = b"\x0b", b"\x1c\r"
TIMEOUT_S = 30.0


class Served:
    """A listener serving from an event loop in a thread of its own, as a deployment's would."""

    def __init__(self, intake: Intake, tls: ssl.SSLContext | None = None, **options: Any) -> None:
        self.listener = MllpListener(intake, **options)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="mllp-listener")
        self.thread.start()
        self.port = self.call(self.listener.start("127.0.0.1", 0, tls))
        self.stopped = False

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=TIMEOUT_S)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.call(self.listener.stop())
        self.call(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=TIMEOUT_S)
        self.loop.close()


class Client:
    """An MLLP client in a few lines of framing: a blocking socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.buffer = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, *messages: bytes) -> None:
        self.sock.sendall(b"".join(START + m + END for m in messages))

    def ack_bytes(self) -> bytes:
        """The next frame's bytes."""
        while END not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the listener closed the connection without an ACK"
            self.buffer += chunk
        frame, self.buffer = self.buffer.split(END, 1)
        assert frame.startswith(START)
        return frame[1:]

    def ack(self) -> hl7.Message:
        return hl7.parse(self.ack_bytes().decode("ascii"))

    def exchange(self, message: bytes) -> hl7.Message:
        self.send(message)
        return self.ack()

    def closed_unanswered(self) -> bool:
        """Whether the listener closes the connection without sending anything more."""
        try:
            return self.sock.recv(65536) == b"" and not self.buffer
        except ConnectionResetError:
            return not self.buffer


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with open_outbox(f"sqlite:///{tmp_path / 'outbox.db'}") as opened:
        yield opened


@pytest.fixture
def intake(outbox: Outbox) -> Intake:
    return Intake(outbox, SERVER, send_request(purpose="TREAT"), Reading(AUTHORITIES))


@pytest.fixture
def served(intake: Intake) -> Iterator[Served]:
    running = Served(intake)
    try:
        yield running
    finally:
        running.stop()


def msa(ack: hl7.Message) -> tuple[str, str]:
    return str(ack["MSA.F1"]), str(ack["MSA.F2"])


def numbered(n: int, message: bytes = GERMLINE) -> bytes:
    """The germline example as another order: its own filler order number and control ID, so
    a new job."""
    return message.replace(b"FIL-GX-77821", f"FIL-GX-{n:05d}".encode()).replace(
        b"GL-20250612-0001", f"GL-N-{n:05d}".encode()
    )


def eventually(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def bundle_of(outbox: Outbox, job_id: str) -> dict[str, Any]:
    job = outbox.get(job_id)
    assert job is not None
    loaded: dict[str, Any] = orjson.loads(job.bundle)
    return loaded


def report_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The Bundle's one DiagnosticReport."""
    resources: list[dict[str, Any]] = [e["resource"] for e in bundle["entry"]]
    (report,) = (r for r in resources if r["resourceType"] == "DiagnosticReport")
    return report


# ---- accepted ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.hl7")))
def test_each_example_is_accepted_once_its_transaction_is_queued(
    served: Served, outbox: Outbox, name: str
) -> None:
    data = (EXAMPLES / name).read_bytes()
    header = read_header(data)
    assert header is not None
    with Client(served.port) as client:
        ack = client.exchange(data)
    assert msa(ack) == ("AA", header.control_id)
    assert [str(s[0]) for s in ack] == ["MSH", "MSA"]
    assert str(ack.segment("MSH")(9)) == "ACK^R01^ACK"
    (job,) = outbox.list()
    assert (job.server, job.state) == (SERVER, JobState.PENDING)
    bundle = bundle_of(outbox, job.id)
    assert bundle["type"] == "transaction"
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])
    assert report_of(bundle)["identifier"][0]["value"] in job.report_key


def test_messages_on_one_connection_are_acknowledged_in_order(
    served: Served, outbox: Outbox
) -> None:
    messages = [
        (EXAMPLES / n).read_bytes() for n in ("somatic-tumor.hl7", "compound-heterozygote.hl7")
    ]
    messages += [(BAD / "wrong_event.hl7").read_bytes(), GERMLINE, numbered(1)]
    with Client(served.port) as client:
        client.send(*messages)  # all at once: the listener reads them from one stream
        acks = [msa(client.ack()) for _ in messages]
    expected = [h.control_id for h in map(read_header, messages) if h is not None]
    assert [control for _, control in acks] == expected
    assert [code for code, _ in acks] == ["AA", "AA", "AR", "AA", "AA"]
    assert len(outbox.list()) == 4


def test_eight_concurrent_connections_are_each_answered(served: Served, outbox: Outbox) -> None:
    together = threading.Barrier(8, timeout=TIMEOUT_S)

    def sender(connection: int) -> list[tuple[str, str]]:
        with Client(served.port) as client:
            together.wait()  # eight connections open at once
            return [msa(client.exchange(numbered(10 * connection + i))) for i in range(2)]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(sender, range(8)))
    for connection, acks in enumerate(answers):
        assert acks == [("AA", f"GL-N-{10 * connection + i:05d}") for i in range(2)]
    assert len({job.report_key for job in outbox.list()}) == 16


def test_the_corrected_report_replaces_the_original_open_job(
    served: Served, outbox: Outbox
) -> None:
    with Client(served.port) as client:
        assert msa(client.exchange(GERMLINE))[0] == "AA"
        (original,) = outbox.list()
        assert report_of(bundle_of(outbox, original.id))["status"] == "final"
        assert msa(client.exchange(CORRECTED))[0] == "AA"
    (job,) = outbox.list()
    assert job.id == original.id and job.state is JobState.PENDING
    assert report_of(bundle_of(outbox, job.id))["status"] == "corrected"


@pytest.mark.parametrize(
    ("charset", "codec"),
    [(b"8859/1", "latin-1"), (b"UNICODE UTF-8", "utf-8"), (b"", "latin-1")],
    ids=["8859-1", "utf-8", "latin-1-undeclared"],
)
def test_non_ascii_messages_arrive_byte_exact(
    served: Served, outbox: Outbox, charset: bytes, codec: str
) -> None:
    facility, note = "GENLABOR MÜNCHEN", "Befund für Müller"
    msh, rest = GERMLINE.split(b"\r", 1)
    msh = msh.replace(b"EXAMPLE GENOMICS LAB", facility.encode(codec))
    if charset:
        msh += b"|" * (17 - msh.count(b"|")) + charset
    rest = rest.replace(b"not clinical data.", note.encode(codec))
    with Client(served.port) as client:
        client.send(msh + b"\r" + rest)
        ack = client.ack_bytes()
    # MSH-6 of the ACK is the message's MSH-4, in the message's own bytes
    assert b"|GENELAB|" + facility.encode(codec) + b"^" in ack
    assert b"\rMSA|AA|GL-20250612-0001" in ack
    (job,) = outbox.list()
    assert note in orjson.dumps(bundle_of(outbox, job.id)).decode()


def test_the_ack_comes_only_once_the_job_is_committed(
    served: Served, intake: Intake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue = intake.outbox.enqueue
    committed = threading.Event()

    def slow_enqueue(*args: Any, **kwargs: Any) -> Any:
        job = enqueue(*args, **kwargs)
        committed.set()
        time.sleep(1.0)  # an ACK written before this returned would arrive now
        return job

    monkeypatch.setattr(intake.outbox, "enqueue", slow_enqueue)
    with Client(served.port) as client:
        client.send(GERMLINE)
        assert committed.wait(TIMEOUT_S)
        client.sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            client.ack_bytes()
        client.sock.settimeout(TIMEOUT_S)
        ack = client.ack()
        # what the ACK answers is in the database, for any other connection to it
        with open_outbox(f"sqlite:///{tmp_path / 'outbox.db'}") as other:
            (job,) = other.list()
    assert msa(ack) == ("AA", "GL-20250612-0001")
    assert job.state is JobState.PENDING


# ---- refused ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in BAD.glob("*.hl7")))
def test_each_bad_message_is_answered_with_the_reader_error(
    served: Served, outbox: Outbox, name: str
) -> None:
    data = (BAD / name).read_bytes()
    with pytest.raises(MessageError) as caught:
        read_oru(data, authorities=AUTHORITIES)
    error = caught.value
    now = datetime.now(UTC)
    expected = hl7.parse(
        acknowledgement(read_header(data), error.ack_code, error=error, control_id="X", now=now)
    )
    with Client(served.port) as client:
        ack = client.exchange(data)
    assert msa(ack) == msa(expected)
    assert msa(ack)[0] == error.ack_code in ("AE", "AR")
    err = ack.segment("ERR")
    assert str(err) == str(expected.segment("ERR"))  # ERR-2 location, ERR-3 condition, ERR-8
    assert str(err(3)).startswith(f"{error.condition}^")
    assert outbox.list() == []


def test_an_outbox_that_cannot_be_written_is_an_application_error(
    served: Served, intake: Intake, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OutboxError(
            "the outbox database failed: disk I/O error", source="sqlite:////srv/outbox.db"
        )

    monkeypatch.setattr(intake.outbox, "enqueue", failing)
    with Client(served.port) as client:
        ack = client.exchange(GERMLINE)
    assert msa(ack) == ("AR", "GL-20250612-0001")  # unrelated to the content: send it again
    err = ack.segment("ERR")
    assert str(err(3)) == "207^Application error^HL70357"
    assert str(err(2)) == ""  # no segment of the message is at fault
    assert ack.unescape(str(err(8))) == "the outbox database failed: disk I/O error"
    monkeypatch.undo()
    assert outbox.list() == []


def test_an_unexpected_failure_is_answered_generically_and_the_connection_goes_on(
    served: Served,
    intake: Intake,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("patient MRN-004711 broke it")

    monkeypatch.setattr(intake.outbox, "enqueue", broken)
    with Client(served.port) as client:
        ack = client.exchange(GERMLINE)
        assert msa(ack) == ("AE", "GL-20250612-0001")
        assert str(ack.segment("ERR")(3)) == "207^Application error^HL70357"
        assert "MRN-004711" not in str(ack) and "unexpectedly" in str(ack.segment("ERR")(8))
        monkeypatch.undo()
        assert msa(client.exchange(GERMLINE)) == ("AA", "GL-20250612-0001")
    assert "RuntimeError" in caplog.text
    assert "MRN-004711" not in caplog.text


# ---- broken frames -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        START + GERMLINE[: len(GERMLINE) // 2],  # the connection cut mid-message
        START + GERMLINE,  # no end block
        START + GERMLINE + b"\x1c",  # an end block without its carriage return
    ],
    ids=["half", "no-end-block", "no-final-cr"],
)
def test_a_truncated_frame_queues_nothing_and_the_listener_goes_on(
    served: Served, outbox: Outbox, frame: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with Client(served.port) as client:
        client.sock.sendall(frame)
        client.sock.shutdown(socket.SHUT_WR)
        assert client.closed_unanswered()
    assert outbox.list() == []
    assert "closed within a message" in caplog.text
    with Client(served.port) as client:
        assert msa(client.exchange(GERMLINE))[0] == "AA"


def test_a_frame_run_into_the_next_is_rejected_once_and_the_connection_goes_on(
    served: Served, outbox: Outbox
) -> None:
    with Client(served.port) as client:
        client.sock.sendall(START + GERMLINE + START + CORRECTED + END)  # the first's end lost
        ack = client.ack()
        assert msa(ack)[0] == "AR"  # MSA-2: what read_header makes of the joined frames
        assert str(ack.segment("ERR")(3)) == "100^Segment sequence error^HL70357"
        assert msa(client.exchange(CORRECTED)) == ("AA", "GL-20250619-0002")
    (job,) = outbox.list()
    assert report_of(bundle_of(outbox, job.id))["status"] == "corrected"


def test_bytes_before_the_start_block_close_the_connection_unanswered(
    served: Served, outbox: Outbox
) -> None:
    with Client(served.port) as client:
        client.sock.sendall(b"GET / HTTP/1.1\r\n\r\n" + START + GERMLINE + END)
        assert client.closed_unanswered()
    assert outbox.list() == []
    with Client(served.port) as client:
        assert msa(client.exchange(GERMLINE))[0] == "AA"


def test_a_frame_over_the_limit_closes_the_connection(intake: Intake, outbox: Outbox) -> None:
    running = Served(intake, max_message_bytes=len(GERMLINE) // 2)
    try:
        with Client(running.port) as client:
            client.send(GERMLINE)
            assert client.closed_unanswered()
        with Client(running.port) as client:  # a message within the limit is answered
            assert msa(client.exchange((BAD / "wrong_message_type.hl7").read_bytes()))[0] == "AR"
    finally:
        running.stop()
    assert outbox.list() == []


# ---- stopping and logging ------------------------------------------------------------------------


def test_stop_finishes_the_message_being_taken_and_closes_idle_connections(
    served: Served, intake: Intake, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueue = intake.outbox.enqueue
    entered, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(TIMEOUT_S)
        return enqueue(*args, **kwargs)

    monkeypatch.setattr(intake.outbox, "enqueue", held)
    with Client(served.port) as busy, Client(served.port) as idle:
        busy.send(GERMLINE)
        assert entered.wait(TIMEOUT_S)
        stopping = threading.Thread(target=served.stop)
        stopping.start()
        assert idle.closed_unanswered()  # waiting for a message: closed at once
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S).close()
        release.set()
        assert msa(busy.ack()) == ("AA", "GL-20250612-0001")
        assert busy.closed_unanswered()
        stopping.join(TIMEOUT_S)
    assert not stopping.is_alive()
    assert len(outbox.list()) == 1


def test_logs_name_connections_control_ids_and_ack_codes_never_the_content(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapter.mllp")
    refused = GERMLINE.replace(b"EXAMPLE HOSPITAL&2.16.840.1.113883.19.5.1&ISO", b"OTHER")
    with Client(served.port) as client:
        assert msa(client.exchange(GERMLINE))[0] == "AA"
        assert msa(client.exchange(refused))[0] == "AE"
    eventually(lambda: "closed" in caplog.text)
    lines = [r.getMessage() for r in caplog.records if r.name == "adapter.mllp"]
    assert any(line.endswith("opened") for line in lines)
    assert "MLLP message GL-20250612-0001 accepted: AA, 1 report(s) queued" in lines
    assert "MLLP message GL-20250612-0001 refused: AE, condition 103, field PID-3.4" in lines
    for value in PHI:
        assert value not in caplog.text, value


# ---- worker processes -------------------------------------------------------------------------


@pytest.fixture
def pooled(intake: Intake) -> Iterator[Served]:
    """A listener converting in two worker processes."""
    running = Served(intake, workers=2)
    try:
        yield running
    finally:
        running.stop()


def test_worker_processes_take_concurrent_connections_and_errors_cross_back(
    pooled: Served, outbox: Outbox
) -> None:
    bad = (BAD / "unknown_loinc_in_variant.hl7").read_bytes()
    with pytest.raises(MessageError) as caught:
        read_oru(bad, authorities=AUTHORITIES)

    def sender(connection: int) -> list[tuple[str, str]]:
        with Client(pooled.port) as client:
            return [msa(client.exchange(numbered(10 * connection + i))) for i in range(2)]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(sender, range(4)))
        with Client(pooled.port) as client:
            refused = client.exchange(bad)
    for connection, acks in enumerate(answers):
        assert acks == [("AA", f"GL-N-{10 * connection + i:05d}") for i in range(2)]
    assert len({job.report_key for job in outbox.list()}) == 8
    assert msa(refused)[0] == caught.value.ack_code
    err = refused.segment("ERR")
    assert str(err(3)).startswith(f"{caught.value.condition}^")
    assert str(err(2)).startswith("OBX^")


def test_a_killed_worker_is_answered_ar_and_a_new_pool_takes_the_next_message(
    pooled: Served, outbox: Outbox
) -> None:
    with Client(pooled.port) as client:
        assert msa(client.exchange(numbered(1)))[0] == "AA"
        workers = multiprocessing.active_children()
        assert workers, "the pool's processes are children of the listener's process"
        for worker in workers:
            os.kill(worker.pid or 0, signal.SIGKILL)
        for worker in workers:
            worker.join(TIMEOUT_S)
        refused = client.exchange(numbered(2))
        assert msa(refused)[0] == "AR"
        assert "send the message again" in str(refused.segment("ERR")(8))
        assert msa(client.exchange(numbered(2)))[0] == "AA"
    assert len(outbox.list()) == 2


def test_a_listener_needs_one_worker_at_least(intake: Intake) -> None:
    with pytest.raises(OptionsError, match="at least 1"):
        asyncio.run(MllpListener(intake, workers=0).start("127.0.0.1", 0))
