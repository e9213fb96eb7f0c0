"""Lab reports taken in for sending: an HL7 v2 ORU^R01 message or a GA4GH Phenopacket read
(:mod:`adapter.readers.hl7v2`, :mod:`adapter.readers.phenopacket`), each report converted
(:func:`adapter.reports.convert_report`, validated) and queued in the outbox for one
configured server. The MLLP listener, the file drop (``fhir-genomics ingest``) and the API
share it.

* **No policy yet.** As for a VCF a Subscription notified, the policy decides when the job is
  sent (:class:`adapter.sync.worker.Sender`), with the Consents then in force; the job keeps
  the deployment's send request (purpose, recipient, indication) and the report's birth date
  and sex, which the minor and X-linked rules need.
* **Whole or nothing.** Every report of a message is converted before any is queued; a bad
  one queues none. Each queue write is committed before :meth:`Intake.message` returns, so an
  acknowledgement sent after it never answers for something lost.
* **Corrections update.** A corrected report has the original's filler order number, so the
  same business identifiers: once sent, its conditional updates replace the original's
  resources on the server; still queued, it replaces the original's Bundle
  (``Outbox.enqueue(replace=True)``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from .errors import InputError, OptionsError
from .model import LabReport
from .readers.hl7v2 import MessageHeader, read_oru
from .readers.phenopacket import read_phenopacket
from .reports import ReportOptions, convert_report
from .sync.outbox import Job, Outbox
from .sync.worker import job_keys

__all__ = [
    "Converted",
    "Intake",
    "Reading",
    "Taken",
    "convert_input",
    "is_phenopacket",
    "parse_authorities",
    "parse_zone",
    "read_file",
]

#: file names the file drop reads as HL7 v2 messages; ``.json`` is a Phenopacket
MESSAGE_SUFFIXES = (".hl7", ".oru", ".txt")
#: the deployment's assigning authorities for the service: ``NAMESPACE=URI`` pairs, separated
#: by commas or white space (the CLI's ``--authority`` takes one pair each)
AUTHORITIES_ENV = "FHIR_GENOMICS_AUTHORITIES"
#: the identifier system of a Phenopacket's subject id, for the service
SUBJECT_SYSTEM_ENV = "FHIR_GENOMICS_SUBJECT_SYSTEM"
#: the zone of HL7 v2 times a sender writes without a UTC offset, for the service
SENDER_ZONE_ENV = "FHIR_GENOMICS_SENDER_ZONE"
_OFFSET = re.compile(r"([+-])([01][0-9]|2[0-3]):?([0-5][0-9])")


def parse_zone(text: str) -> tzinfo:
    """A sender's time zone: a UTC offset (``+02:00``, ``-0500``) or an IANA name
    (``Europe/Berlin``, whose offset follows daylight saving time)."""
    if found := _OFFSET.fullmatch(text.strip()):
        sign, hours, minutes = found.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise OptionsError(
            f"{text!r} is no time zone: give a UTC offset (+02:00) or an IANA name (Europe/Berlin)",
            field="sender_zone",
        ) from None


def parse_authorities(pairs: Iterable[str]) -> dict[str, str]:
    """``NAMESPACE=URI`` pairs (an HL7 v2 HD namespace id and the identifier system URI it
    stands for) as the reader's ``authorities``."""
    found: dict[str, str] = {}
    for pair in pairs:
        namespace, sep, uri = pair.partition("=")
        if not sep or not namespace.strip() or ":" not in uri:
            raise OptionsError(
                f"an assigning authority is NAMESPACE=URI, e.g. HOSP=https://hospital.example/mrn "
                f"(got {pair!r})",
                field="authority",
            )
        found[namespace.strip()] = uri.strip()
    return found


@dataclass(frozen=True, slots=True)
class Taken:
    """What one input became: its MSH (an HL7 v2 message's), and the jobs queued."""

    header: MessageHeader | None
    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class Reading:
    """How the deployment's lab reports are read: ``authorities`` and ``sender_zone`` are the
    HL7 v2 reader's, ``subject_system`` the identifier system of a Phenopacket's subject."""

    authorities: Mapping[str, str] = field(default_factory=dict)
    sender_zone: tzinfo | None = None
    subject_system: str | None = None

    def read(
        self, data: bytes, source: str, *, phenopacket: bool
    ) -> tuple[MessageHeader | None, tuple[LabReport, ...]]:
        """A message's MSH and reports, or a Phenopacket's report."""
        if not phenopacket:
            read = read_oru(
                data, source=source, authorities=self.authorities, sender_zone=self.sender_zone
            )
            return read.header, read.reports
        if not self.subject_system:
            raise OptionsError(
                "a Phenopacket's subject id needs its identifier system: give the deployment's "
                "(--subject-system, $FHIR_GENOMICS_SUBJECT_SYSTEM)",
                field="subject_system",
            )
        return None, (read_phenopacket(data, source=source, subject_system=self.subject_system),)


def is_phenopacket(path: Path) -> bool:
    """Files are told apart by name: ``.json`` is a Phenopacket, the rest HL7 v2."""
    return path.suffix.lower() == ".json"


def read_file(path: Path) -> bytes:
    """A report file's bytes; an unreadable file is bad input."""
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the file: {e.strerror}", source=path.name) from e


@dataclass(frozen=True)
class Converted:
    """An input's reports and their validated Bundles, not queued yet: the CPU-bound part of
    taking it, which a worker process may do."""

    header: MessageHeader | None
    reports: tuple[LabReport, ...]
    bundles: tuple[bytes, ...]


def convert_input(reading: Reading, data: bytes, source: str, phenopacket: bool) -> Converted:
    """An HL7 v2 message's (or a Phenopacket's) reports read and converted, all or none."""
    header, reports = reading.read(data, source, phenopacket=phenopacket)
    return Converted(header, reports, tuple(report_bundle(r, source) for r in reports))


@dataclass(frozen=True)
class Intake:
    """Takes reports in for ``server`` (a configured server's name), under ``request`` (see
    :func:`adapter.sync.worker.send_request`), read as ``reading`` says."""

    outbox: Outbox
    server: str
    request: Mapping[str, Any]
    reading: Reading = field(default_factory=Reading)

    def message(self, data: bytes, source: str) -> Taken:
        """An HL7 v2 ORU^R01 message's reports, queued."""
        return self._taken(data, source, phenopacket=False)

    def phenopacket(self, data: bytes, source: str) -> Taken:
        """A Phenopacket's report, queued."""
        return self._taken(data, source, phenopacket=True)

    def file(self, path: Path) -> Taken:
        """A dropped file: a Phenopacket by its ``.json`` name, else an HL7 v2 message."""
        return self._taken(read_file(path), path.name, phenopacket=is_phenopacket(path))

    def queue(self, converted: Converted) -> Taken:
        """Reports converted (here or by :func:`convert_input` in another process), queued."""
        return Taken(
            converted.header,
            tuple(
                self._enqueue(bundle, self._request(report))
                for report, bundle in zip(converted.reports, converted.bundles, strict=True)
            ),
        )

    def _taken(self, data: bytes, source: str, *, phenopacket: bool) -> Taken:
        return self.queue(convert_input(self.reading, data, source, phenopacket))

    def _enqueue(self, bundle: bytes, request: dict[str, Any]) -> Job:
        """The report's job: new, or the open one of its order, which takes this Bundle
        unless it holds a newer version (a correction, then the late original)."""
        keys = job_keys(orjson.loads(bundle))
        job = self.outbox.enqueue(self.server, *keys, bundle, request=request)
        if job.bundle == bundle or _issued(job.bundle) > _issued(bundle):
            return job
        return self.outbox.enqueue(self.server, *keys, bundle, request=request, replace=True)

    def _request(self, report: LabReport) -> dict[str, Any]:
        """The deployment's send request, with the report's birth date and sex where it
        gives none."""
        request = dict(self.request)
        if not request.get("birth_date") and report.birth_date is not None:
            request["birth_date"] = report.birth_date.isoformat()
        if request.get("sex") in (None, "unknown"):
            request["sex"] = report.sex.value
        return request


def _issued(bundle: bytes) -> str:
    """When the Bundle's report was issued (OBR-22), as its instant's UTC text; "" when it
    says not (such a version never wins over a dated one)."""
    for entry in orjson.loads(bundle).get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "DiagnosticReport" and resource.get("issued"):
            moment = datetime.fromisoformat(resource["issued"].replace("Z", "+00:00"))
            return moment.astimezone(UTC).isoformat()
    return ""


def report_bundle(report: LabReport, source: str) -> bytes:
    """The report as a validated transaction Bundle, as the outbox keeps it."""
    with tempfile.TemporaryDirectory(prefix="fhir-genomics-report-") as folder:
        out = Path(folder) / "report.json"
        convert_report(report, out, ReportOptions(validate=True, input_name=source))
        return out.read_bytes()
