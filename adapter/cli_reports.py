"""The CLI's lab report commands: ``mllp`` (HL7 v2 messages over MLLP), ``ingest`` (a drop
folder of messages and Phenopackets) and ``convert-report`` (one message or Phenopacket to
FHIR), thin shells over :mod:`adapter.mllp`, :mod:`adapter.intake` and :mod:`adapter.reports`.

``mllp`` and ``ingest`` queue each report in the outbox for one server (``--server``), under
the send request given (``--purpose``, ``--recipient``, ``--indication``); ``outbox send`` or
``serve --sync-every`` send the jobs, asking the policy then. The outbox and the servers file
are found as by the sync commands (:mod:`adapter.cli_sync`). Both log to stderr and stop
gracefully on SIGTERM or SIGINT: what is being taken is finished (a message acknowledged, a
file moved), then the process exits 0.

The drop folder (``ingest DIR``), policy:

* **What is taken.** Files of DIR (not of its subfolders) whose names end in
  ``adapter.intake.MESSAGE_SUFFIXES`` (an HL7 v2 message) or ``.json`` (a Phenopacket), case
  aside, oldest modification first. Only complete names are taken: a sender writes to a
  temporary name (``report.hl7.part``, ``.report.hl7``; names starting with a dot are never
  taken) and renames when done. A file modified within the last second is left for the next
  round all the same, for senders that write in place.
* **Where it goes.** A file whose reports are queued moves to ``DIR/done/``; a file refused
  (an :class:`~adapter.errors.InputError` or :class:`~adapter.errors.ValidationFailed`: the
  file is at fault) to ``DIR/failed/`` with ``<name>.error.json`` beside it, the error's
  OperationOutcome. A name already there gets ``-2``, ``-3``, ... before its suffix. An
  unexpected exception fails its file alike, with a generic error, logged by its type alone.
* **Not the file's fault.** Any other :class:`~adapter.errors.AdapterError` (the outbox cannot
  be written, a Phenopacket without ``--subject-system``) leaves the file where it is and ends
  the round: ``--once`` exits with the error's exit code, polling logs it and tries again
  next round.
* **Exit code of --once.** 0 when every file was taken, else the exit code of the first file
  refused (3 bad input, 4 validation failed, 1 unexpected); the other files are still taken.
* **Crash safety.** A file's jobs are committed before it is moved. A crash in between leaves
  it in DIR, and the next run queues it again: the outbox keeps one open job per report and
  server, and a job already sent is sent again as conditional updates, so the copy is
  harmless. Run one ``ingest`` per folder: two would race for each file.

``convert-report``: the Bundle(s) of one message or Phenopacket, validated, for the lab's own
use (no policy). A message of several reports (OBR groups) writes one output per report:
``OUT``, then ``OUT`` with ``-2``, ``-3``, ... before its suffix; each is whole or absent, and
a report that fails stops the command with those before it written. Without ``-o`` the
Bundles go to stdout, one per line (NDJSON output is a folder: it needs ``-o``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import signal
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from .cli_sync import _add_places, _add_request, _one_server, _outbox, _send_request
from .convert import OutputFormat
from .errors import AdapterError, InputError, OptionsError, OutputError, ValidationFailed
from .fhir.writers import write_atomically
from .hl7v2_oru import oru_message
from .intake import (
    MESSAGE_SUFFIXES,
    Intake,
    Reading,
    is_phenopacket,
    parse_authorities,
    parse_zone,
    read_file,
)
from .mllp import DEFAULT_HOST, DEFAULT_PORT, serve_mllp, server_tls
from .model import LabReport
from .readers.fhir_report import read_report_bundle
from .reports import ReportOptions, convert_report
from .sync.config import Hl7v2Settings
from .sync.outbox import Outbox

__all__ = ["add_convert_report", "add_ingest", "add_mllp"]

log = logging.getLogger(__name__)

#: a file modified more recently than this is left for the next round
SETTLED_S: Final = 1.0
DEFAULT_EVERY_S: Final = 5.0
DONE: Final = "done"
FAILED: Final = "failed"
_TAKEN_SUFFIXES: Final = (*MESSAGE_SUFFIXES, ".json")
_UNEXPECTED: Final = "the adapter failed unexpectedly on this file; its log names the error"


def add_mllp(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "mllp",
        help="receive HL7 v2 ORU^R01 lab reports over MLLP and queue them for a FHIR server",
        description="Listens for HL7 v2 ORU^R01 messages framed by MLLP; converts each report, "
        "validates it and queues it in the outbox for --server, then acknowledges the message "
        "(AA; AE or AR with an ERR segment when it cannot be taken). Runs until SIGTERM or "
        "SIGINT, finishing the messages being taken.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"{DEFAULT_PORT}; 0: a free one, logged"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes converting messages, for many connections on several cores (1: none)",
    )
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="MLLP over TLS: our certificate")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="its private key")
    p.add_argument(
        "--tls-client-ca", type=Path, metavar="PEM", help="take only clients this CA certified"
    )
    _add_intake(p)
    p.set_defaults(run=_run_mllp, subject_system=None)


def add_ingest(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    suffixes = ", ".join(MESSAGE_SUFFIXES)
    p = sub.add_parser(
        "ingest",
        help="queue the lab reports dropped in a folder for a FHIR server",
        description=f"Takes every complete file of DIR, oldest first: HL7 v2 ORU^R01 messages "
        f"({suffixes}) and Phenopackets (.json). Each report is converted, validated and "
        "queued in the outbox for --server; the file then moves to DIR/done/, or, refused, to "
        "DIR/failed/ with <name>.error.json beside it. Prints one JSON line per file.",
    )
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument(
        "--once",
        action="store_true",
        help="take what is there and exit: 0 when every file was taken, else the exit code "
        "of the first one refused",
    )
    p.add_argument(
        "--every",
        type=float,
        default=DEFAULT_EVERY_S,
        metavar="SECONDS",
        help=f"without --once, look again this often until SIGTERM or SIGINT ({DEFAULT_EVERY_S})",
    )
    _add_intake(p)
    _add_subject_system(p)
    p.set_defaults(run=_run_ingest)


def add_convert_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "convert-report",
        help="convert an HL7 v2 ORU^R01 message or a Phenopacket to FHIR",
        description="Writes each report of FILE (an HL7 v2 message; a Phenopacket when its "
        "name ends in .json) as Genomics Reporting resources, validated. A message of "
        "several reports writes OUT, OUT-2, ... (the number before the suffix); without -o "
        "the Bundles go to stdout, one per line.",
    )
    p.add_argument("input", type=Path, metavar="FILE")
    p.add_argument("-o", "--out", type=Path, metavar="OUT", help="a Bundle file (NDJSON: folder)")
    p.add_argument(
        "--format", choices=[f.value for f in OutputFormat], default=OutputFormat.TRANSACTION
    )
    _add_message_options(p)
    _add_subject_system(p)
    p.set_defaults(run=_run_convert_report)


def add_to_hl7v2(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "to-hl7v2",
        help="write a genomic-report Bundle as an HL7 v2 ORU^R01 message",
        description="Reads a Bundle of one genomic report (from convert, convert-report, or a "
        "server's searchset) and writes it as an HL7 v2.5.1 ORU^R01 of the fully "
        "LOINC-qualified genetic variation model, UTF-8, segments ended by CR.",
    )
    p.add_argument("bundle", type=Path, metavar="BUNDLE")
    p.add_argument("-o", "--out", type=Path, metavar="OUT", help="default: stdout")
    defaults = Hl7v2Settings()  # as a servers file's mllp:// server has them
    for side in ("sending", "receiving"):
        default = getattr(defaults, f"{side}_application")
        p.add_argument(
            f"--{side}-application", default=default, metavar="HD", help=f"MSH ({default})"
        )
        p.add_argument(
            f"--{side}-facility", default=getattr(defaults, f"{side}_facility"), metavar="HD"
        )
    _add_message_options(p)
    p.set_defaults(run=_run_to_hl7v2)


def _run_to_hl7v2(args: argparse.Namespace) -> int:
    path: Path = args.bundle
    try:
        bundle = orjson.loads(read_file(path))
    except orjson.JSONDecodeError as e:
        raise InputError(f"the Bundle is not JSON: {e}", source=path.name) from None
    if not isinstance(bundle, dict):
        raise InputError("the file holds no Bundle", source=path.name)
    text = oru_message(
        read_report_bundle(bundle, source=path.name),
        control_id=uuid.uuid4().hex[:20],
        now=datetime.now(UTC),
        sending=(args.sending_application, args.sending_facility),
        receiving=(args.receiving_application, args.receiving_facility),
        authorities=parse_authorities(args.authority),
    )
    if args.out is None:
        sys.stdout.buffer.write(text.encode("utf-8"))
        return 0
    write_atomically(args.out, text.encode("utf-8"))
    return 0


def _add_intake(p: argparse.ArgumentParser) -> None:
    """Where reports are queued and under what request, and how messages are read."""
    _add_places(p)
    _add_request(p)
    _add_message_options(p)


def _add_message_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--authority",
        action="append",
        default=[],
        metavar="NAMESPACE=URI",
        help="an assigning authority's namespace ID (PID-3.4, EI) and the identifier system it "
        "stands for, e.g. HOSP=https://hospital.example/mrn; repeatable",
    )
    p.add_argument(
        "--sender-zone",
        metavar="ZONE",
        help="the zone of message times written without a UTC offset: +02:00 or Europe/Berlin "
        "(default: such times are refused)",
    )


def _add_subject_system(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--subject-system", metavar="URI", help="the identifier system of a Phenopacket's subject"
    )


def _intake(args: argparse.Namespace, outbox: Outbox) -> Intake:
    server = _one_server(args, "the reports are for").name
    return Intake(outbox, server, _send_request(args), _reading(args))


def _reading(args: argparse.Namespace) -> Reading:
    return Reading(
        authorities=parse_authorities(args.authority),
        sender_zone=parse_zone(args.sender_zone) if args.sender_zone else None,
        subject_system=getattr(args, "subject_system", None),
    )


# ---- mllp --------------------------------------------------------------------------------------


def _run_mllp(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise OptionsError(f"no such port: {args.port}", field="--port")
    if args.workers < 1:
        raise OptionsError(f"{args.workers} workers: at least 1", field="--workers")
    tls = _listener_tls(args)
    _log_to_stderr()
    with _outbox(args) as outbox:
        intake = _intake(args, outbox)
        asyncio.run(
            _until_signalled(
                lambda stop: serve_mllp(
                    intake, args.host, args.port, stop, workers=args.workers, tls=tls
                )
            )
        )
    return 0


def _listener_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise OptionsError("give --tls-cert and --tls-key together", field="--tls-cert")
    if args.tls_cert is None:
        if args.tls_client_ca is not None:
            raise OptionsError("--tls-client-ca needs --tls-cert", field="--tls-client-ca")
        return None
    return server_tls(args.tls_cert, args.tls_key, args.tls_client_ca)


async def _until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """``serve`` until SIGTERM or SIGINT sets its stop event."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        await serve(stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


def _log_to_stderr() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# ---- ingest ------------------------------------------------------------------------------------


def _run_ingest(args: argparse.Namespace) -> int:
    if not args.folder.is_dir():
        raise OptionsError("no such folder", source=str(args.folder), field="DIR")
    if args.every <= 0:
        raise OptionsError("--every takes a number of seconds above 0", field="--every")
    with _outbox(args) as outbox:
        drop = _Drop(_intake(args, outbox), args.folder)
        _log_to_stderr()
        if args.once:
            return drop.take_all()
        asyncio.run(_until_signalled(lambda stop: drop.poll(args.every, stop)))
    return 0


@dataclass(frozen=True)
class _Drop:
    """A drop folder's files taken into ``intake`` (see the module docstring)."""

    intake: Intake
    folder: Path

    def ready(self) -> list[Path]:
        """The complete files to take, oldest first."""
        settled = time.time() - SETTLED_S
        found: list[tuple[float, str]] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if _taken_name(entry.name) and entry.is_file():
                    with contextlib.suppress(FileNotFoundError):
                        modified = entry.stat().st_mtime
                        if modified <= settled:
                            found.append((modified, entry.name))
        return [self.folder / name for _, name in sorted(found)]

    def take_all(self) -> int:
        """Every ready file taken; the exit code of ``--once``."""
        refused = [error for path in self.ready() if (error := self.take(path)) is not None]
        return refused[0].exit_code if refused else 0

    async def poll(self, every: float, stop: asyncio.Event) -> None:
        """Rounds every ``every`` seconds until ``stop``; a file being taken is finished."""
        while not stop.is_set():
            try:
                for path in self.ready():
                    if stop.is_set():
                        break
                    await asyncio.to_thread(self.take, path)
            except AdapterError as error:
                log.error("the drop folder's round stopped, next round in %ss: %s", every, error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)

    def take(self, path: Path) -> AdapterError | None:
        """One file's reports queued and the file moved to done/; or, refused, moved to
        failed/ with its error beside it, which is returned."""
        try:
            taken = self.intake.file(path)
        except FileNotFoundError:
            log.warning("%s vanished before it was read: another ingest took it?", path.name)
            return None
        except (InputError, ValidationFailed) as error:
            return self._refuse(path, error)
        except AdapterError:
            raise
        except Exception as error:
            log.error("taking %s failed unexpectedly: %s", path.name, type(error).__name__)
            return self._refuse(path, AdapterError(_UNEXPECTED, source=path.name))
        moved = _move(path, _free(self.folder / DONE / path.name))
        _print_line(
            {"file": path.name, "moved": self._shown(moved), "jobs": [j.id for j in taken.jobs]}
        )
        return None

    def _refuse(self, path: Path, error: AdapterError) -> AdapterError:
        target = _free(self.folder / FAILED / path.name)
        outcome = orjson.dumps(error.to_operation_outcome(), option=orjson.OPT_INDENT_2)
        try:
            target.parent.mkdir(exist_ok=True)
            target.with_name(f"{target.name}.error.json").write_bytes(outcome)
        except OSError as e:
            raise OutputError(
                f"cannot write the error file: {e.strerror}", source=str(target)
            ) from e
        _move(path, target)
        _print_line({"file": path.name, "moved": self._shown(target), "error": str(error)})
        return error

    def _shown(self, path: Path) -> str:
        return str(path.relative_to(self.folder))


def _taken_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(_TAKEN_SUFFIXES)


def _move(path: Path, target: Path) -> Path:
    """``path`` renamed to ``target`` (its folder made when missing)."""
    try:
        target.parent.mkdir(exist_ok=True)
        os.replace(path, target)
    except OSError as e:
        raise OutputError(f"cannot move the file: {e.strerror}", source=str(path)) from e
    return target


def _free(path: Path) -> Path:
    """``path``, or the first of its numbered names (:func:`_numbered`) not taken."""
    return next(p for n in itertools.count(1) if not (p := _numbered(path, n)).exists())


def _numbered(path: Path, n: int) -> Path:
    """The ``n``-th of a series of outputs: ``path``, then ``-2``, ``-3``, ... before the
    suffix."""
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def _print_line(line: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()


# ---- convert-report ----------------------------------------------------------------------------


def _run_convert_report(args: argparse.Namespace) -> int:
    form = OutputFormat(args.format)
    if args.out is None and form is OutputFormat.NDJSON:
        raise OptionsError("NDJSON is written to a folder: name it with -o", field="--out")
    options = ReportOptions(form, validate=True, input_name=args.input.name)
    reports = _read_reports(args)
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="fhir-genomics-report-") as folder:
            out = Path(folder) / "report.json"
            for report in reports:
                convert_report(report, out, options)
                sys.stdout.buffer.write(out.read_bytes() + b"\n")
        return 0
    for n, report in enumerate(reports, start=1):
        out = _numbered(args.out, n)
        summary = convert_report(report, out, options)
        print(f"wrote {out}: {summary.variants_converted} variants", file=sys.stderr)
    return 0


def _read_reports(args: argparse.Namespace) -> tuple[LabReport, ...]:
    """FILE's reports: a Phenopacket's one when its name ends in .json, else a message's."""
    path: Path = args.input
    data = read_file(path)
    return _reading(args).read(data, path.name, phenopacket=is_phenopacket(path))[1]
