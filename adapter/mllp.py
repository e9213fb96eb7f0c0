"""The MLLP listener: HL7 v2 ORU^R01 messages over TCP, each answered by one acknowledgement.

Transport: the Minimal Lower Layer Protocol (HL7 v2.5.1 Appendix C.4; HL7 Transport
Specification MLLP Release 2, http://www.hl7.org/v3ballot/html/infrastructure/transport/transport-mllp.htm):
a message travels as ``<VT> message <FS><CR>`` (0x0B ... 0x1C 0x0D), and so does its ACK.

Decisions, each a policy of this module:

* **Framing by python-hl7, bytes untouched.** Frames are read and written by ``hl7.mllp``
  (``start_hl7_server``, ``MLLPStreamReader.readblock``, ``MLLPStreamWriter.writeblock``),
  which give the frame's bytes as sent. Its ``readmessage`` is not used: it decodes ASCII
  strictly (a Latin-1 message would fail before MSH-18 is read) and parses with
  ``hl7.parse``. The bytes go to :meth:`adapter.intake.Intake.message`, whose reader decodes
  them as MSH-18 says. The ACK is ASCII but for what it copies from the message's MSH
  (applications, facilities, control ID; ERR-8 is escaped to ASCII), which is written back in
  the message's own encoding: UTF-8 when the message's bytes are UTF-8, else ISO 8859-1 (a
  character of another 8-bit set that Latin-1 lacks becomes ``?``).
* **One ACK per message, in order.** A connection's messages are taken one after another,
  each acknowledged before the next is read; connections are served concurrently, their
  messages converted and queued in worker threads (blocking database and file work).
* **Worker processes.** Conversion and validation are CPU-bound and hold the GIL, so
  concurrent connections gain nothing from threads. With ``workers`` above 1 each message is
  read, converted and validated (:func:`~adapter.intake.convert_input`) in a pool of that many
  processes (spawned: forking a threaded server is unsafe; each loads the validator as it
  starts), and queued by this process, which alone writes the outbox. A worker that dies
  (killed, out of memory) breaks the pool: its messages are answered AR (send again), and a
  new pool takes the next ones.
* **Acknowledged means kept.** AA is written only after :meth:`Intake.message` returned: the
  outbox has committed every report's job, so nothing acknowledged is lost if the process
  dies afterwards. A message the process dies on before its ACK is resent by the sender; the
  outbox's open-job rule and conditional updates make the second copy harmless.
* **Errors.** A :class:`~adapter.errors.MessageError` is answered with its ACK code (AE or AR)
  and an ERR segment naming its segment, field and HL7 table 0357 condition (the MSH read by
  :func:`~adapter.readers.hl7v2.read_header`, so a refused message's control ID is answered
  too). An :class:`~adapter.errors.OutboxError` (the queue cannot be written) is AR, which
  HL7 table 0008 gives for a message refused for reasons unrelated to its content, the
  sender to send it again; any other :class:`~adapter.errors.AdapterError` (say, validation)
  is AE; both with condition 207 (application error) and the error's message, which names no
  identifier; any
  other exception AE 207 with a generic text, logged by its type alone (its text could hold a
  value of the message). No message stops the connection or the listener.
* **Broken frames.** A connection closed mid-frame (or a frame without its end block) takes
  nothing and cannot be answered: the connection is closed and the listener goes on. A frame
  whose end block is missing before the next frame runs into it: the two read as one message
  with a start block inside, which the reader rejects (AR 100), answered once. Bytes
  before a start block (python-hl7's ``InvalidBlockError``; it has consumed them up to the
  next end block) mean the peer is out of step or does not speak MLLP: the connection is
  closed unanswered, and an MLLP sender reconnects and resends what was not acknowledged,
  in step again. A frame over ``max_message_bytes`` is treated alike.
* **Graceful stop.** :meth:`MllpListener.stop` stops accepting, closes connections waiting for
  a message (one partly received is dropped unanswered), lets messages being taken finish and
  be acknowledged, then closes their connections.
* **TLS.** With a certificate and key (:func:`server_tls`) the listener speaks MLLP over TLS
  (1.2 or later); with a client CA too, it takes only peers whose certificate that CA signed
  (mutual TLS). A failed handshake never reaches the intake.
* **The ACK's own control ID** (its MSH-10) is 20 random hexadecimal digits, MSH-10's
  length in v2.5.1.
* **Logs** name the peer's address, a message's control ID (MSH-10), its ACK code and, when
  refused, the condition and field: never a value of the message's content.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import secrets
import ssl
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from hl7.mllp import InvalidBlockError, start_hl7_server

from .errors import AdapterError, MessageError, OptionsError, OutboxError
from .intake import Converted, Intake, Taken, convert_input
from .readers.hl7v2 import MessageHeader, acknowledgement, read_header
from .validation import load_validator

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_MESSAGE_BYTES",
    "MllpListener",
    "serve_mllp",
    "server_tls",
]

log = logging.getLogger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
#: the port IANA registers for HL7 over MLLP
DEFAULT_PORT: Final = 2575
#: the largest frame taken, as the HTTP API's largest lab report
MAX_MESSAGE_BYTES: Final = 16 << 20
#: how long :meth:`MllpListener.stop` waits for messages being taken and their ACKs
STOP_GRACE_S: Final = 60.0
#: HL7 table 0357: application error, for failures that are not the message's content
_APPLICATION_ERROR: Final = "207"
_WORKER_DIED: Final = "a worker process of the adapter died: send the message again"
_UNEXPECTED: Final = (
    "the adapter failed unexpectedly; its log names the error: send the message again"
)


@dataclass
class MllpListener:
    """Takes the messages of every connection into ``intake``, acknowledging each."""

    intake: Intake
    max_message_bytes: int = MAX_MESSAGE_BYTES
    #: processes converting messages; 1: threads of this process
    workers: int = 1
    _server: asyncio.Server | None = field(default=None, init=False)
    _pool: ProcessPoolExecutor | None = field(default=None, init=False)
    #: each connection's task, and whether it waits for a message (True) or takes one
    _connections: dict[asyncio.Task[None], bool] = field(default_factory=dict, init=False)
    _stopping: bool = field(default=False, init=False)

    async def start(
        self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, tls: ssl.SSLContext | None = None
    ) -> int:
        """Listen on ``host``:``port`` (0: a free port), over TLS when ``tls`` is given;
        returns the port bound."""
        if self.workers < 1:
            raise OptionsError(f"{self.workers} workers: at least 1", field="workers")
        if self.workers > 1:
            self._pool = _process_pool(self.workers)
        try:
            self._server = await start_hl7_server(
                self._serve, host, port, limit=self.max_message_bytes, ssl=tls
            )
        except OSError as e:
            raise OptionsError(
                f"cannot listen on {host}:{port}: {e.strerror}; choose another port or host",
                field="port",
            ) from e
        bound: int = self._server.sockets[0].getsockname()[1]
        log.info("MLLP%s listener on %s:%d", " over TLS" if tls else "", host, bound)
        return bound

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop accepting; finish and acknowledge the messages being taken (for up to
        ``grace_s`` seconds), then close every connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task, waiting in self._connections.items():
            if waiting:
                task.cancel()
        tasks = set(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown, cancel_futures=True)
        log.info("MLLP listener stopped")

    async def _serve(self, reader: Any, writer: Any) -> None:
        """One connection, until its peer closes it or the listener stops."""
        task = asyncio.current_task()
        if task is None:  # python-hl7 runs each connection as a task
            raise RuntimeError("an MLLP connection outside a task")
        peer = _peer(writer.get_extra_info("peername"))
        self._connections[task] = True
        log.info("MLLP connection from %s opened", peer)
        try:
            await self._exchange(reader, writer, task, peer)
        finally:
            del self._connections[task]
            writer.close()
            await _closed(writer)
            log.info("MLLP connection from %s closed", peer)

    async def _exchange(
        self, reader: Any, writer: Any, task: asyncio.Task[None], peer: str
    ) -> None:
        """Read each message and write its ACK, until the connection ends or the listener
        stops."""
        count = 0
        while not self._stopping:
            frame = await _frame(reader, peer, self.max_message_bytes)
            if frame is None:
                return
            self._connections[task] = False
            count += 1
            writer.writeblock(await self.answer(frame, f"MLLP {peer} message {count}"))
            try:
                await writer.drain()
            except ConnectionError as e:  # taken all the same: the sender resends it
                log.info("MLLP connection from %s lost before an ACK: %s", peer, type(e).__name__)
                return
            self._connections[task] = True

    async def answer(self, data: bytes, source: str) -> bytes:
        """The ACK of one message (its bytes as framed), after taking it into the intake;
        ``source`` names it in errors."""
        try:
            taken = await self._take(data, source)
        except BrokenProcessPool:
            return _refusal(data, "AR", _application_error(_WORKER_DIED))
        except MessageError as error:
            return _refusal(data, error.ack_code, error)
        except AdapterError as error:
            log.error("taking an MLLP message failed: %s: %s", type(error).__name__, error.message)
            code = "AR" if isinstance(error, OutboxError) else "AE"  # AR: send it again later
            return _refusal(data, code, _application_error(error.message))
        except Exception as error:
            log.error("taking an MLLP message failed unexpectedly: %s", type(error).__name__)
            return _refusal(data, "AE", _application_error(_UNEXPECTED))
        log.info(
            "MLLP message %s accepted: AA, %d report(s) queued",
            _control_id(taken.header),
            len(taken.jobs),
        )
        return _ack(taken.header, "AA", None, data)

    async def _take(self, data: bytes, source: str) -> Taken:
        """The message converted (in the pool, if any) and queued."""
        pool = self._pool
        if pool is None:
            return await asyncio.to_thread(self.intake.message, data, source)
        loop = asyncio.get_running_loop()
        reading = self.intake.reading
        try:
            converted: Converted = await loop.run_in_executor(
                pool, convert_input, reading, data, source, False
            )
        except BrokenProcessPool:
            if self._pool is pool:  # the first message to find it broken renews it
                log.error("an MLLP worker process died: starting a new pool")
                self._pool = _process_pool(self.workers)
                pool.shutdown(wait=False, cancel_futures=True)
            raise
        return await asyncio.to_thread(self.intake.queue, converted)


def _process_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # fork is unsafe in a threaded server
    return ProcessPoolExecutor(workers, mp_context=context, initializer=load_validator)


def server_tls(cert_file: Path, key_file: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """The listener's TLS: its certificate chain and key, and the CA its clients'
    certificates must chain to (None: clients are not asked for one)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as e:
        raise OptionsError(f"cannot be used for TLS: {e}", field="--tls-cert") from e
    if client_ca is not None:
        try:
            context.load_verify_locations(client_ca)
        except (OSError, ssl.SSLError) as e:
            raise OptionsError(f"cannot be used for TLS: {e}", field="--tls-client-ca") from e
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve_mllp(
    intake: Intake,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    workers: int = 1,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve MLLP on ``host``:``port`` until ``stop`` is set, then stop gracefully."""
    listener = MllpListener(intake, workers=workers)
    await listener.start(host, port, tls)
    try:
        await stop.wait()
    finally:
        await listener.stop()


async def _frame(reader: Any, peer: str, limit: int) -> bytes | None:
    """The next frame's message bytes; None when the connection is to end (closed by the peer,
    cut mid-frame, out of step, or a frame too large)."""
    try:
        frame: bytes = await reader.readblock()
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            log.warning(
                "MLLP connection from %s closed within a message (%d bytes, no end block): "
                "nothing of it was taken",
                peer,
                len(e.partial),
            )
        return None
    except InvalidBlockError:
        log.warning("MLLP connection from %s sent bytes before a start block: closing", peer)
        return None
    except ValueError:  # python-hl7: the frame is over the stream's limit
        log.warning("MLLP connection from %s sent a frame over %d bytes: closing", peer, limit)
        return None
    except ConnectionError as e:
        log.info("MLLP connection from %s lost: %s", peer, type(e).__name__)
        return None
    return frame


async def _closed(writer: Any) -> None:
    """Wait for the transport to close; a peer that reset it is closed too."""
    try:
        await writer.wait_closed()
    except ConnectionError:
        return


def _peer(address: Any) -> str:
    """``host:port`` of a peer's socket address (None from asyncio for a peer that left
    before its connection was set up)."""
    return f"{address[0]}:{address[1]}" if address else "a peer gone"


def _application_error(text: str) -> MessageError:
    """A failure that is not the message's content, as the ERR an ACK carries."""
    return MessageError(text, ack_code="AE", condition=_APPLICATION_ERROR)


def _refusal(data: bytes, code: str, error: MessageError) -> bytes:
    header = read_header(data)
    log.warning(
        "MLLP message %s refused: %s, condition %s, field %s",
        _control_id(header),
        code,
        error.condition,
        error.field or "-",
    )
    return _ack(header, code, error, data)


def _ack(header: MessageHeader | None, code: str, error: MessageError | None, data: bytes) -> bytes:
    """The ACK's bytes, in the message's own encoding (see the module docstring)."""
    text = acknowledgement(
        header, code, error=error, control_id=secrets.token_hex(10), now=datetime.now(UTC)
    )
    if text.isascii():
        return text.encode("ascii")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return text.encode("latin-1", "replace")
    return text.encode("utf-8")


def _control_id(header: MessageHeader | None) -> str:
    return header.control_id if header is not None and header.control_id else "-"
