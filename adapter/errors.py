"""The adapter's one exception tree.

Every failure a user can cause or act on is an :class:`AdapterError`::

    AdapterError
    ├── InputError            bad input; names the file, line and field when known
    │   ├── VcfError
    │   │   ├── NotAVcfError
    │   │   ├── TruncatedInputError
    │   │   ├── MalformedRecordError
    │   │   ├── HeaderMismatchError
    │   │   ├── UnknownSampleError
    │   │   └── UnknownContigError
    │   ├── RegionError       bad --region or BED file
    │   ├── GenomeBuildError  build unknown, or contradicting the header
    │   ├── UnsupportedMedia  a request body of a media type the endpoint does not take
    │   ├── ReportError       a lab report (HL7 v2 message, Phenopacket) cannot be read
    │   │   ├── MessageError      an HL7 v2 message: segment, field and ACK code named
    │   │   └── PhenopacketError  a Phenopacket: the JSON path named
    │   └── PolicyError       a policy input cannot be used (nothing is disclosed on it)
    │       ├── ConsentError      a Consent malformed, unsupported or for another patient
    │       └── PolicyFileError   the policy file has an unknown key or a bad value
    ├── DisclosureDenied      the policy denies the request: nothing is disclosed
    ├── OptionsError          conflicting or invalid options
    ├── ValidationFailed      emitted FHIR did not conform to its profile
    ├── PackageError          a pinned FHIR package is missing or fails its integrity hash
    ├── OutputError           the output could not be written
    ├── SyncError             a FHIR server did not take what was sent (the job stays queued)
    │   ├── AuthError             no access token: the token endpoint refused, or a key is unusable
    │   ├── ServerRejected        a 4xx that retrying cannot fix; carries the OperationOutcome
    │   ├── ServerUnavailable     still 429/5xx/unreachable after the bounded retries
    │   ├── PatientNotResolved    the identifier matches no Patient, or several
    │   └── MessageRefused        an HL7 v2 receiver answered AE or AR that a resend cannot fix
    ├── OutboxError           the durable job store cannot be opened or written
    └── AccessError           a client of the HTTP API without a valid bearer token
        └── InsufficientScope     a valid token without the endpoint's scope

The CLI maps each class to an exit code and the HTTP API to a status code and a FHIR
OperationOutcome, so callers never see a traceback for a problem they can fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AccessError",
    "AdapterError",
    "AuthError",
    "ConsentError",
    "DisclosureDenied",
    "GenomeBuildError",
    "HeaderMismatchError",
    "InputError",
    "InsufficientScope",
    "MalformedRecordError",
    "MessageError",
    "MessageRefused",
    "NotAVcfError",
    "OptionsError",
    "OutboxError",
    "OutputError",
    "PackageError",
    "PatientNotResolved",
    "PhenopacketError",
    "PolicyError",
    "PolicyFileError",
    "RegionError",
    "ReportError",
    "ServerRejected",
    "ServerUnavailable",
    "SyncError",
    "TruncatedInputError",
    "UnknownContigError",
    "UnknownSampleError",
    "UnsupportedMedia",
    "ValidationFailed",
    "ValidationIssue",
    "VcfError",
]


class AdapterError(Exception):
    """Root of every error the adapter raises on purpose."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    #: FHIR OperationOutcome.issue.code (http://hl7.org/fhir/issue-type)
    issue_code: ClassVar[str] = "exception"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self.__str__())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by class and attributes, so an error crosses from a worker process
        intact (the default would call ``__init__`` with the message alone)."""
        return _rebuild, (type(self), self.__dict__.copy())

    def location(self) -> str | None:
        """Where the problem is, as 'file:line (field)', or None when unknown."""
        parts = []
        if self.source is not None:
            parts.append(self.source if self.line is None else f"{self.source}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.field is not None:
            parts.append(f"field {self.field}")
        return ", ".join(parts) or None

    def __str__(self) -> str:
        where = self.location()
        return f"{where}: {self.message}" if where else self.message

    def to_operation_outcome(self) -> dict[str, Any]:
        """This error as a FHIR R4 OperationOutcome."""
        issue: dict[str, Any] = {
            "severity": "error",
            "code": self.issue_code,
            "diagnostics": str(self),
        }
        if self.field is not None:
            issue["expression"] = [self.field]
        return {"resourceType": "OperationOutcome", "issue": [issue]}


class InputError(AdapterError):
    """The input cannot be read as what it claims to be."""

    exit_code = 3
    http_status = 422
    issue_code = "invalid"


class VcfError(InputError):
    """A VCF problem."""


class NotAVcfError(VcfError):
    """The file is not a VCF (no ##fileformat=VCF header)."""

    http_status = 415
    issue_code = "structure"


class TruncatedInputError(VcfError):
    """A compressed file ends early or is corrupt."""

    issue_code = "structure"


class MalformedRecordError(VcfError):
    """A data line cannot be parsed."""

    issue_code = "structure"


class HeaderMismatchError(VcfError):
    """A record disagrees with its header (column count, undeclared FORMAT field)."""

    issue_code = "structure"


class UnknownSampleError(VcfError):
    """The requested sample is not in the file, or a multi-sample file needs one named."""

    issue_code = "not-found"

    def __init__(self, message: str, *, samples: Sequence[str], source: str | None = None):
        self.samples = tuple(samples)
        super().__init__(message, source=source, field="sample")


class UnknownContigError(VcfError):
    """A contig has no RefSeq accession for the genome build."""

    issue_code = "not-found"


class RegionError(InputError):
    """A region string or BED file is malformed or needs an index that is missing."""


class GenomeBuildError(InputError):
    """The genome build cannot be determined or contradicts the header."""


class UnsupportedMedia(InputError):
    """The request body is of a media type the endpoint does not take."""

    http_status = 415
    issue_code = "not-supported"


class ReportError(InputError):
    """A lab report cannot be read into the model: nothing of it is converted or queued."""


class MessageError(ReportError):
    """An HL7 v2 message that cannot be taken. ``field`` names the place as HL7 writes it
    (``OBX-3``, ``MSH-9``); ``segment_index`` is the ERL-2 segment sequence (the
    segment's 1-based occurrence among the message's segments of its type: the 3rd OBX is
    3), ``field_position`` the field's 1-based sequence, for the ERR segment (ERR-2).
    ``ack_code`` is what an acknowledgement answers: ``AR`` (reject: the message itself is
    unusable, e.g. missing MSH, wrong type, broken encoding characters) or ``AE`` (error:
    its content is wrong). ``condition`` is HL7 table 0357's message error condition code
    (ERR-3), e.g. ``101`` required field missing, ``103`` table value not found, ``200``
    unsupported message type."""

    issue_code = "structure"

    def __init__(
        self,
        message: str,
        *,
        ack_code: str,
        condition: str,
        source: str | None = None,
        field: str | None = None,
        segment_index: int | None = None,
        field_position: int | None = None,
    ) -> None:
        self.ack_code = ack_code
        self.condition = condition
        self.segment_index = segment_index
        self.field_position = field_position
        super().__init__(message, source=source, field=field)


class PhenopacketError(ReportError):
    """A Phenopacket that is not valid JSON, not a v2 Phenopacket, or lacks what a report
    needs; ``field`` is the JSON path (``interpretations[0].diagnosis``)."""

    issue_code = "structure"


class PolicyError(InputError):
    """A policy input (a Consent, the policy file, the ACMG table) cannot be used. The policy
    engine never permits on such input: the caller gets this error, never a silent permit."""


class ConsentError(PolicyError):
    """A Consent resource is malformed, of an unsupported shape, or for another patient."""


class PolicyFileError(PolicyError):
    """The policy file has an unknown key, a missing one, or a value out of range."""


class DisclosureDenied(AdapterError):
    """The policy denies the request as a whole (no purpose, a purpose never permitted, no
    consent for it): nothing was written or sent, and the decision was audited."""

    exit_code = 7
    http_status = 403
    issue_code = "forbidden"


class OptionsError(AdapterError):
    """Options conflict or have invalid values."""

    exit_code = 2
    http_status = 400
    issue_code = "invalid"


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One finding of the profile validator."""

    severity: str  # "error" | "warning" | "information"
    path: str  # FHIRPath-like location, e.g. Observation.component[3].valueCodeableConcept
    message: str
    profile: str | None = None


class ValidationFailed(AdapterError):
    """Emitted resources do not conform to their profiles."""

    exit_code = 4
    http_status = 422
    issue_code = "processing"

    def __init__(self, message: str, *, issues: Sequence[ValidationIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__(message)

    def to_operation_outcome(self) -> dict[str, Any]:
        return {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": i.severity,
                    "code": self.issue_code,
                    "diagnostics": i.message,
                    "expression": [i.path],
                }
                for i in self.issues
            ]
            or [{"severity": "error", "code": self.issue_code, "diagnostics": self.message}],
        }


class PackageError(AdapterError):
    """A pinned FHIR package cannot be obtained or fails its integrity check."""

    exit_code = 5
    http_status = 503


class OutputError(AdapterError):
    """The output cannot be written."""

    exit_code = 6


class SyncError(AdapterError):
    """A FHIR server did not take what was sent. The job stays in the outbox (failed or due
    for retry), never lost; ``source`` names the server's base URL."""

    exit_code = 8
    http_status = 502
    issue_code = "transient"


class AuthError(SyncError):
    """No access token could be had: the token endpoint refused the client, its answer was
    not a token, or the private key cannot sign. Fix the configuration; retrying will not."""

    issue_code = "security"


class ServerRejected(SyncError):
    """The server answered a 4xx that a retry cannot fix; its OperationOutcome is kept so an
    operator sees the server's own words."""

    issue_code = "processing"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        outcome: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.status = status
        self.outcome = outcome
        super().__init__(message, source=source)


class ServerUnavailable(SyncError):
    """Still throttled, failing or unreachable after the bounded retries: try again later,
    and not before ``retry_after`` seconds when the server asked for that long a pause."""

    def __init__(
        self, message: str, *, source: str | None = None, retry_after: float | None = None
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, source=source)


class PatientNotResolved(SyncError):
    """The patient's identifier matches no Patient on the server, or more than one."""

    issue_code = "not-found"


class MessageRefused(SyncError):
    """An HL7 v2 receiver refused a message (its ACK's MSA-1 ``ack_code``: AE, AR, CE or CR)
    for a reason a resend cannot fix, or answered out of step; ``conditions`` are its ERR-3
    codes (HL7 table 0357), kept for operators with its own words."""

    issue_code = "processing"

    def __init__(
        self,
        message: str,
        *,
        ack_code: str,
        conditions: Sequence[str] = (),
        source: str | None = None,
    ) -> None:
        self.ack_code = ack_code
        self.conditions = tuple(conditions)
        super().__init__(message, source=source)


class OutboxError(AdapterError):
    """The durable job store cannot be opened, migrated or written."""

    exit_code = 9
    http_status = 503


class AccessError(AdapterError):
    """A client of the HTTP API sent no valid bearer token."""

    exit_code = 10
    http_status = 401
    issue_code = "login"


class InsufficientScope(AccessError):
    """A valid token without the scope the endpoint requires."""

    http_status = 403
    issue_code = "forbidden"


def _rebuild(cls: type[AdapterError], state: dict[str, Any]) -> AdapterError:
    """An unpickled error: its attributes restored without calling ``__init__``."""
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error
