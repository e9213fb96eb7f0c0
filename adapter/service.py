"""The HTTP API: a thin FastAPI shell over :func:`adapter.convert.convert_vcf`.

The VCF is the multipart file part ``file``; the files the CLI takes as ``--knowledge``,
``--classifications``, ``--pgx`` and ``--consent`` are file parts of those names beside it
(``consent`` repeatable). Every upload is streamed to a private temporary folder (``mkdtemp``:
mode 0700), which is removed once the response has been sent or the request failed.

The disclosure policy is the deployment's, never the client's: the policy file is
``$FHIR_GENOMICS_POLICY`` (default: the shipped one) and every decision is appended to the
audit log ``$FHIR_GENOMICS_AUDIT_LOG`` (default: ``fhir-genomics-audit.ndjson`` in the working
folder). A request the policy refuses gets a 403 OperationOutcome.

Every endpoint but ``/healthz`` needs a bearer token with the endpoint's scope
(:mod:`adapter.access`): a 401 or 403 OperationOutcome otherwise, with its
``WWW-Authenticate`` challenge.

FHIR Subscription notifications (``fhir-genomics subscribe`` registers them) arrive at
``POST /v1/notifications/{key}`` (Backport Bundles, rest-hook pings) and
``PUT /v1/notifications/{key}/{type}/{id}`` (rest-hook with payload), scope ``genomics/notify``.
Each is recorded in the outbox database before the 200 answer (a duplicate delivery is
answered 200 too, and not recorded); the work (fetch, convert, queue, re-evaluate) runs after
the answer as a background task (:mod:`adapter.sync.inbound`). A notification recorded but not
yet worked off when the process stops is worked off by the next one's background task. The
servers are ``$FHIR_GENOMICS_SERVERS`` (see :mod:`adapter.sync.config`).

Errors leave as FHIR OperationOutcome resources with a 4xx status the client can act on;
an unexpected failure is a 500 whose body names no internals: an error in an uploaded file
names the part and the client's file name, never the temporary path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar

import orjson
from fastapi import BackgroundTasks, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from . import __version__
from .access import Access, Principal
from .convert import (
    ConvertOptions,
    OutputFormat,
    convert_vcf,
    optional_pair,
    parse_instant,
    patient_ref,
    transcript_order,
    tumor_biomarkers,
)
from .decision import decide_bundle, decision_json
from .disclosure import Disclosure, deployment_audit_log, disclosure_request
from .errors import (
    AccessError,
    AdapterError,
    InputError,
    InsufficientScope,
    OptionsError,
    UnsupportedMedia,
)
from .intake import (
    AUTHORITIES_ENV,
    SENDER_ZONE_ENV,
    SUBJECT_SYSTEM_ENV,
    Reading,
    parse_authorities,
    parse_zone,
)
from .metrics import Labels, Metrics
from .model import GenomeBuild, GenomicSourceClass, LabReport, Sex
from .policy import consent_from_dict, read_consent
from .regions import parse_region
from .reports import ReportOptions, convert_report
from .sync.config import ServerConfig, configured_servers
from .sync.inbound import Inbound
from .sync.outbox import DEFAULT_OUTBOX, OUTBOX_ENV, Outbox, open_outbox, outbox_exists
from .sync.worker import Sender

__all__ = ["create_app"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
_CHUNK = 1 << 20
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
#: file parts besides the VCF, each the upload of a CLI option of the same name
UPLOAD_PARTS = ("knowledge", "classifications", "pgx", "consent")
#: the parts that may be sent more than once
_REPEATABLE = frozenset({"consent"})
#: the deployment's policy file, audit log, and the key that de-identifies research output
POLICY_ENV = "FHIR_GENOMICS_POLICY"
KEY_ENV = "FHIR_GENOMICS_PSEUDONYM_KEY_FILE"
_MAX_FILES = len(UPLOAD_PARTS) + 15  # up to 16 Consents
#: the largest notification body taken (a DocumentReference may carry its VCF inline)
MAX_NOTIFICATION_BYTES: Final = 256 << 20
#: the largest lab report taken (an HL7 v2 message, a Phenopacket)
MAX_REPORT_BYTES: Final = 16 << 20
#: how long a notification's background task waits for a gap's recovery to fall due
RECOVERY_WAIT_S: Final = 15.0
#: how often, without ``sync_every_s``, notifications left over are looked for
NOTIFICATIONS_EVERY_S: Final = 30.0


def create_app(
    access: Access | None = None,
    outbox_url: str | None = None,
    servers: Mapping[str, ServerConfig] | None = None,
    sync_every_s: float | None = None,
    notifications_every_s: float = NOTIFICATIONS_EVERY_S,
) -> FastAPI:
    """A new application; the CLI's ``serve`` and the tests both start from here. ``access``
    defaults to the deployment's keys (:meth:`Access.from_env`), the outbox to
    ``$FHIR_GENOMICS_OUTBOX`` (opened at its first use), the servers notifications come from
    to ``$FHIR_GENOMICS_SERVERS`` (read at the first notification). Notifications left over
    (recorded before a restart, or due for a retry) are worked off from start-up on, every
    ``notifications_every_s`` where the outbox has Subscriptions; with ``sync_every_s`` the
    service works them off that often instead, and also sends every job due."""
    access = access or Access.from_env()
    jobs = _Jobs(outbox_url or os.environ.get(OUTBOX_ENV) or DEFAULT_OUTBOX, servers)
    app = FastAPI(
        title="FHIR Genomics adapter",
        version=__version__,
        description="VCF to HL7 FHIR Genomics Reporting IG STU3 (FHIR R4).",
        lifespan=_background(
            jobs.cycle if sync_every_s else jobs.sweep, sync_every_s or notifications_every_s
        ),
    )
    app.add_exception_handler(AdapterError, _adapter_error)
    app.add_exception_handler(RequestValidationError, _request_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_api_route("/healthz", _healthz, methods=["GET"], summary="Liveness")
    app.add_api_route(
        "/v1/convert",
        _convert,
        methods=["POST"],
        dependencies=[_guard(access, "convert")],
        summary="Convert an uploaded VCF (multipart file part 'file'; optional file parts "
        "'knowledge', 'classifications', 'pgx', 'consent'); 'purpose' is required",
        response_class=Response,
        responses={
            200: {"content": {FHIR_JSON: {}, FHIR_NDJSON: {}}},
            400: {},
            403: {},
            415: {},
            422: {},
        },
    )
    app.add_api_route(
        "/v1/reports",
        _reports,
        methods=["POST"],
        dependencies=[_guard(access, "convert")],
        summary="Convert a lab report: an HL7 v2 ORU^R01 message (application/hl7-v2) or a "
        "GA4GH Phenopacket (application/json); query: purpose (required), format, indication, "
        "recipient, birth_date, break_glass, decided_at, subject_system",
        response_class=Response,
        responses={200: {"content": {FHIR_JSON: {}}}, 403: {}, 415: {}, 422: {}},
    )
    app.add_api_route(
        "/v1/consent/decide",
        _decide,
        methods=["POST"],
        dependencies=[_guard(access, "decide")],
        summary="The disclosure decision on a Bundle of one patient's genomic results (JSON "
        "body: bundle, consents, purpose, recipient, indication, birth_date, sex, break_glass, "
        "decided_at): the decision, its reasons, the obligations and the filtered Bundle",
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}, 400: {}, 422: {}},
    )
    app.add_api_route(
        "/v1/jobs/{job_id}",
        jobs.job,
        methods=["GET"],
        dependencies=[_guard(access, "jobs.read")],
        summary="A sync job's state, attempts, progress and last error (never its Bundle)",
        response_class=Response,
        responses={200: {"content": {"application/json": {}}}, 404: {}},
    )
    notified: dict[int | str, dict[str, Any]] = {200: {"content": {FHIR_JSON: {}}}, 404: {}}
    app.add_api_route(
        "/v1/notifications/{key}",
        jobs.notification,
        methods=["POST"],
        dependencies=[_guard(access, "notify")],
        summary="A Subscription's notification (Backport Bundle, rest-hook ping): recorded, "
        "then acted on after the answer",
        response_class=Response,
        responses=notified,
    )
    app.add_api_route(
        "/v1/notifications/{key}/{resource_type}/{resource_id}",
        jobs.notification,
        methods=["PUT"],
        dependencies=[_guard(access, "notify")],
        summary="A rest-hook notification with its payload: recorded, then acted on",
        response_class=Response,
        responses=notified,
    )
    app.add_api_route(
        "/metrics",
        jobs.metrics,
        methods=["GET"],
        dependencies=[_guard(access, "metrics")],
        summary="Prometheus metrics: jobs by state, retries, send latency",
        response_class=Response,
    )
    return app


class _Jobs:
    """The outbox as the API shows it, opened on first use and shared by requests."""

    def __init__(self, url: str, servers: Mapping[str, ServerConfig] | None) -> None:
        self._url = url
        self._outbox: Outbox | None = None
        self._servers = servers
        self._inbound: Inbound | None = None
        self.counters = Metrics()

    def _open(self) -> Outbox:
        if self._outbox is None:
            self._outbox = open_outbox(self._url)
        return self._outbox

    def _configured(self) -> Mapping[str, ServerConfig]:
        if self._servers is None:
            self._servers = configured_servers()
        return self._servers

    def _receiver(self) -> Inbound:
        if self._inbound is None:
            self._inbound = Inbound(
                self._open(),
                self._configured(),
                audit_log=deployment_audit_log(),
                policy=_deployment_policy(),
                metrics=self.counters,
            )
        return self._inbound

    async def sweep(self) -> None:
        """Leftover notifications worked off, where this deployment has Subscriptions: an
        outbox not created yet is not created by looking."""
        if self._outbox is None and not outbox_exists(self._url):
            return
        if await run_in_threadpool(self._open().registrations):
            inbound = await run_in_threadpool(self._receiver)
            await inbound.drain()

    async def cycle(self) -> None:
        """Leftover notifications worked off, then every job due sent."""
        inbound = await run_in_threadpool(self._receiver)
        await inbound.drain()
        sender = Sender(
            inbound.outbox,
            self._configured(),
            audit_log=deployment_audit_log(),
            policy=_deployment_policy(),
            metrics=self.counters,
        )
        await sender.drain()

    async def notification(
        self,
        key: str,
        request: Request,
        background: BackgroundTasks,
        resource_type: str | None = None,
        resource_id: str | None = None,
    ) -> Response:
        """Recorded, then answered; worked off after the answer."""
        named = f"{resource_type}/{resource_id}" if resource_type else None
        inbound = await run_in_threadpool(self._receiver)
        received = await inbound.receive(key, await _body(request), named)
        if received is None:
            issue = {
                "severity": "error",
                "code": "not-found",
                "diagnostics": "no such Subscription",
            }
            return _outcome(404, {"resourceType": "OperationOutcome", "issue": [issue]})
        background.add_task(_work_off, inbound)
        said = "a duplicate delivery, already recorded" if received.duplicate else "recorded"
        issue = {"severity": "information", "code": "informational", "diagnostics": said}
        return _outcome(200, {"resourceType": "OperationOutcome", "issue": [issue]})

    async def job(self, job_id: str) -> Response:
        found = await run_in_threadpool(self._open().get, job_id)
        if found is None:
            issue = {"severity": "error", "code": "not-found", "diagnostics": "no such job"}
            return _outcome(404, {"resourceType": "OperationOutcome", "issue": [issue]})
        return Response(orjson.dumps(found.as_json()), media_type="application/json")

    async def metrics(self) -> Response:
        outbox = self._open()
        counts = await run_in_threadpool(outbox.counts)
        retries = await run_in_threadpool(outbox.retries)
        gauges: dict[str, dict[Labels, float]] = {
            "fhir_genomics_jobs": {(("state", s.value),): float(n) for s, n in counts.items()},
            "fhir_genomics_job_retries_total": {(): float(retries)},
        }
        text = self.counters.render(gauges)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


_NOTIFICATION_TOO_LARGE: Final = (
    f"the notification is over {MAX_NOTIFICATION_BYTES} bytes: have the server send the file "
    "as a url (Binary) rather than inline data"
)
_REPORT_TOO_LARGE: Final = (
    f"the report is over {MAX_REPORT_BYTES} bytes: a lab report's message or Phenopacket is "
    "far smaller; send a VCF to /v1/convert"
)


async def _body(
    request: Request, limit: int = MAX_NOTIFICATION_BYTES, too_large: str = _NOTIFICATION_TOO_LARGE
) -> bytes:
    """The request body, refused past ``limit`` bytes with ``too_large``."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


def _deployment_policy() -> Path | None:
    return Path(path) if (path := os.environ.get(POLICY_ENV)) else None


def _background(
    work: Callable[[], Awaitable[None]], every_s: float
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The service's own worker, for its lifetime: ``work`` at start-up, then every
    ``every_s`` seconds; a failed round is logged (messages are PHI-free) and the next one
    tries again."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def keep_working() -> None:
            while True:
                try:
                    await work()
                except Exception as exc:
                    log.error("a background round failed: %s: %s", type(exc).__name__, exc)
                await asyncio.sleep(every_s)

        task = asyncio.create_task(keep_working())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


async def _work_off(inbound: Inbound) -> None:
    """The background task: what failed is kept with the notification; nothing escapes."""
    try:
        await inbound.drain(wait_s=RECOVERY_WAIT_S)
    except Exception as exc:
        log.error("working off notifications failed: %s", type(exc).__name__)


def _guard(access: Access, endpoint: str) -> Any:
    """The endpoint's token check, as a FastAPI dependency."""
    check = access.require(endpoint)

    async def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        return check(authorization)

    return Depends(caller)


async def _healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _convert(request: Request) -> Response:
    """Options come as form fields or query parameters; form fields win."""
    workdir = Path(tempfile.mkdtemp(prefix="fhir-genomics-"))
    named: dict[str, str] = {}  # a saved file's path -> the part and file name the client sent
    try:
        source = workdir / "input.vcf"
        async with request.form(max_files=1 + _MAX_FILES, max_fields=64) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise OptionsError("upload the VCF as the multipart field 'file'", field="file")
            await _save(upload, source)
            named[str(source)] = f"part 'file' ({_base_name(upload.filename)})"
            saved = await _save_parts(form, workdir, named)
            form_fields = _grouped((k, v) for k, v in form.multi_items() if isinstance(v, str))
        fields = _grouped(request.query_params.multi_items()) | form_fields
        options = options_from_fields(fields, input_name=_base_name(upload.filename), uploads=saved)
        out = workdir / ("out" if options.output_format is OutputFormat.NDJSON else "out.json")
        await run_in_threadpool(convert_vcf, source, out, options)
    except BaseException as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(exc, AdapterError):
            _name_uploads(exc, named)
        raise
    media = FHIR_NDJSON if out.is_dir() else FHIR_JSON
    return StreamingResponse(_stream_and_remove(out, workdir), media_type=media)


#: HL7 v2 (ER7) over HTTP: the issue's media type, and the HL7 over HTTP specification's
_HL7V2: Final = frozenset(
    {"application/hl7-v2", "application/hl7-v2+er7", "x-application/hl7-v2+er7"}
)
_REPORT_FIELDS: Final = frozenset(
    {"purpose", "format", "indication", "recipient", "birth_date", "break_glass",
     "decided_at", "subject_system"}
)  # fmt: skip


async def _reports(request: Request) -> Response:
    """A lab report converted under the deployment's policy, as for ``/v1/convert``: its
    Bundle; a message of several reports (OBR groups) answers a collection Bundle of theirs.
    The HL7 v2 reader's assigning authorities and a Phenopacket subject's identifier system
    are the deployment's (``$FHIR_GENOMICS_AUTHORITIES``, ``$FHIR_GENOMICS_SUBJECT_SYSTEM``)."""
    fields = _grouped(request.query_params.multi_items())
    if unknown := sorted(set(fields) - _REPORT_FIELDS):
        raise OptionsError(f"unknown option(s): {', '.join(unknown)}", field=unknown[0])
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await _body(request, MAX_REPORT_BYTES, _REPORT_TOO_LARGE)
    reports = await run_in_threadpool(_read_reports, media, body, fields)
    disclosure = disclosure_request(
        purpose=_single(fields, "purpose"),
        at=parse_instant(text, "decided_at") if (text := _single(fields, "decided_at")) else None,
        policy=_deployment_policy(),
        indication=fields.get("indication", []),
        birth_date=_single(fields, "birth_date"),
        recipient=_single(fields, "recipient"),
        break_glass=_flag(_single(fields, "break_glass"), "break_glass"),
        audit_log=deployment_audit_log(),
    )
    form = _choice(OutputFormat, _single(fields, "format"), "format") or OutputFormat.TRANSACTION
    if form is OutputFormat.NDJSON:
        raise OptionsError(
            "a report is answered as a Bundle: transaction or collection", field="format"
        )
    options = ReportOptions(form, validate=True, disclosure=disclosure, input_name="request body")
    bundles = [await run_in_threadpool(_report_json, r, options) for r in reports]
    if len(bundles) == 1:
        return Response(bundles[0], media_type=FHIR_JSON)
    entries = b",".join(b'{"resource":' + bundle + b"}" for bundle in bundles)
    wrapped = b'{"resourceType":"Bundle","type":"collection","entry":[' + entries + b"]}"
    return Response(wrapped, media_type=FHIR_JSON)


def _read_reports(
    media: str, body: bytes, fields: Mapping[str, list[str]]
) -> tuple[LabReport, ...]:
    """The body's reports, read as the deployment's environment says."""
    if media not in _HL7V2 and media not in {"application/json", FHIR_JSON}:
        raise UnsupportedMedia(
            "send an HL7 v2 message as application/hl7-v2 or a Phenopacket as application/json "
            f"(got {media or 'no Content-Type'})"
        )
    zone = os.environ.get(SENDER_ZONE_ENV)
    reading = Reading(
        authorities=parse_authorities(
            os.environ.get(AUTHORITIES_ENV, "").replace(",", " ").split()
        ),
        sender_zone=parse_zone(zone) if zone else None,
        subject_system=_single(fields, "subject_system") or os.environ.get(SUBJECT_SYSTEM_ENV),
    )
    return reading.read(body, "request body", phenopacket=media not in _HL7V2)[1]


def _report_json(report: LabReport, options: ReportOptions) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fhir-genomics-report-") as folder:
        out = Path(folder) / "report.json"
        convert_report(report, out, options)
        return out.read_bytes()


#: the members of a decide request, and their JSON types
_DECIDE: Final = {
    "bundle": dict, "consents": list, "purpose": str, "recipient": str, "indication": list,
    "birth_date": str, "sex": str, "break_glass": bool, "decided_at": str,
}  # fmt: skip


async def _decide(request: Request) -> Response:
    """A deny is a decision too: 200, with no Bundle. The policy and the audit log are the
    deployment's, as for conversions."""
    body = _decide_body(await request.body())
    consents = [
        consent_from_dict(c, source=f"consents[{i}]") for i, c in enumerate(body["consents"])
    ]
    text = body.get("decided_at")
    disclosure = disclosure_request(
        consents,
        purpose=body.get("purpose"),
        at=parse_instant(text, "decided_at") if text else None,
        policy=Path(path) if (path := os.environ.get(POLICY_ENV)) else None,
        indication=body["indication"],
        birth_date=body.get("birth_date"),
        recipient=body.get("recipient"),
        break_glass=body.get("break_glass", False),
        audit_log=deployment_audit_log(),
    )
    if disclosure.request.purpose in disclosure.policy.research:
        raise OptionsError(
            "a research disclosure is de-identified, which decide does not do", field="purpose"
        )
    sex = _choice(Sex, body.get("sex"), "sex") or Sex.UNKNOWN
    result = await run_in_threadpool(decide_bundle, body["bundle"], disclosure, sex=sex)
    answer = decision_json(result) | {"bundle": result.bundle}
    return Response(orjson.dumps(answer), media_type="application/json")


def _decide_body(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise OptionsError(f"the request body is not JSON: {e}") from None
    if not isinstance(body, dict):
        raise OptionsError("the request body must be a JSON object")
    for key, value in body.items():
        if key not in _DECIDE:
            raise OptionsError(f"unknown member {key!r}; use {', '.join(_DECIDE)}", field=key)
        if not isinstance(value, _DECIDE[key]):
            _not_a(key)
    if "bundle" not in body:
        raise OptionsError("give the Bundle to decide on as 'bundle'", field="bundle")
    for key, member in (("consents", dict), ("indication", str)):
        body.setdefault(key, [])
        if not all(isinstance(item, member) for item in body[key]):
            raise OptionsError(f"each of {key} must be {_KIND[member]}", field=key)
    return body


_KIND: Final = {dict: "an object", list: "an array", str: "a string", bool: "true or false"}


def _not_a(key: str) -> NoReturn:
    raise OptionsError(f"{key} must be {_KIND[_DECIDE[key]]}", field=key)


def _single(fields: Mapping[str, list[str]], name: str) -> str | None:
    """The one value of option ``name``, or None; given twice is an error."""
    values = fields.get(name, [])
    if len(values) > 1:
        raise OptionsError(f"option {name} given {len(values)} times", field=name)
    return values[0] if values else None


def _grouped(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in items:
        grouped.setdefault(key, []).append(value)
    return grouped


def options_from_fields(
    fields: Mapping[str, list[str]],
    *,
    input_name: str,
    uploads: Mapping[str, list[Path]] | None = None,
) -> ConvertOptions:
    """ConvertOptions from HTTP form/query fields, named as the CLI's long options, and the
    saved uploads of the :data:`UPLOAD_PARTS` (part -> path)."""
    for part in UPLOAD_PARTS:
        if part in fields:  # a path on the server is never read
            raise OptionsError(
                f"send {part} as a file part of the multipart upload (curl -F {part}=@FILE), "
                "not as a text field or query parameter",
                field=part,
            )
    files = uploads or {}
    known = {
        "patient", "patient_identifier", "sample", "build", "source_class", "sex", "format",
        "region", "include_filtered", "validate", "document_reference", "report_id",
        "specimen", "specimen_identifier", "order_identifier", "performer", "issued",
        "heteroplasmy_threshold", "tmb", "msi", "transcript_order", "purpose", "indication",
        "birth_date", "recipient", "break_glass", "decided_at",
    }  # fmt: skip
    unknown = sorted(set(fields) - known)
    if unknown:
        raise OptionsError(f"unknown option(s): {', '.join(unknown)}", field=unknown[0])

    def one(name: str) -> str | None:
        return _single(fields, name)

    patient = patient_ref(one("patient"), one("patient_identifier"))
    disclosure = disclosure_request(
        [read_consent(path, patient=patient) for path in files.get("consent", [])],
        purpose=one("purpose"),
        at=parse_instant(text, "decided_at") if (text := one("decided_at")) else None,
        policy=Path(path) if (path := os.environ.get(POLICY_ENV)) else None,
        indication=fields.get("indication", []),
        birth_date=one("birth_date"),
        recipient=one("recipient"),
        break_glass=_flag(one("break_glass"), "break_glass"),
        audit_log=deployment_audit_log(),
    )
    return ConvertOptions(
        patient=patient,
        sample=one("sample"),
        build=_choice(GenomeBuild, one("build"), "build"),
        source_class=_choice(GenomicSourceClass, one("source_class"), "source_class")
        or GenomicSourceClass.GERMLINE,
        sex=_choice(Sex, one("sex"), "sex") or Sex.UNKNOWN,
        output_format=_choice(OutputFormat, one("format"), "format") or OutputFormat.TRANSACTION,
        regions=tuple(parse_region(r) for r in fields.get("region", [])),
        include_filtered=_flag(one("include_filtered"), "include_filtered"),
        validate=_flag(one("validate"), "validate"),
        include_document_reference=_flag(one("document_reference"), "document_reference"),
        report_id=one("report_id"),
        specimen_id=one("specimen"),
        specimen_identifier=optional_pair(one("specimen_identifier"), "specimen_identifier"),
        order_identifier=optional_pair(one("order_identifier"), "order_identifier"),
        performer=one("performer"),
        issued=parse_instant(text) if (text := one("issued")) else None,
        heteroplasmy_threshold=_default(
            _number(one("heteroplasmy_threshold"), "heteroplasmy_threshold"), 0.95
        ),
        transcript_order=transcript_order(one("transcript_order")),
        input_name=input_name,
        tumor=tumor_biomarkers(_number(one("tmb"), "tmb"), one("msi")),
        knowledge=_one_file(files, "knowledge"),
        classifications=_one_file(files, "classifications"),
        pharmacogenomics=_one_file(files, "pgx"),
        disclosure=disclosure,
        pseudonym_key=_research_key(disclosure),
    )


def _research_key(disclosure: Disclosure) -> bytes | None:
    """The deployment's key, for a research request: its output is de-identified."""
    if disclosure.request.purpose not in disclosure.policy.research:
        return None
    path = os.environ.get(KEY_ENV)
    if not path:
        raise OptionsError(
            f"this service makes no research output: no pseudonym key is configured ({KEY_ENV})",
            field="purpose",
        )
    return Path(path).read_bytes()


def _one_file(files: Mapping[str, list[Path]], part: str) -> Path | None:
    found = files.get(part)
    return found[0] if found else None


_E = TypeVar("_E", GenomeBuild, GenomicSourceClass, Sex, OutputFormat)


def _choice(enum: type[_E], text: str | None, name: str) -> _E | None:
    if text is None:
        return None
    try:
        return enum(text)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise OptionsError(f"{name} must be one of {allowed}; got {text!r}", field=name) from None


def _flag(text: str | None, name: str) -> bool:
    value = (text or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise OptionsError(f"{name} must be true or false; got {text!r}", field=name)


def _default(value: float | None, default: float) -> float:
    return default if value is None else value


def _number(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise OptionsError(f"{name} is not a number: {text!r}", field=name) from None


def _base_name(filename: str | None, default: str = "upload.vcf") -> str:
    """The uploaded file's own name, with any client-side folders dropped."""
    name = Path((filename or "").replace("\\", "/")).name
    return name if name not in ("", "..") else default


async def _save(upload: UploadFile, target: Path) -> None:
    with target.open("wb") as f:
        while chunk := await upload.read(_CHUNK):
            f.write(chunk)


async def _save_parts(
    form: FormData, workdir: Path, named: dict[str, str]
) -> dict[str, list[Path]]:
    """The :data:`UPLOAD_PARTS` sent, saved (part -> paths), each saved path noted in
    ``named`` with the part's public name; a file part of any other name is refused."""
    sent = {key for key, value in form.multi_items() if isinstance(value, UploadFile)}
    unknown = sorted(sent - {"file", *UPLOAD_PARTS})
    if unknown:
        parts = ", ".join(("file", *UPLOAD_PARTS))
        raise OptionsError(
            f"unknown file part(s): {', '.join(unknown)}; the file parts are {parts}",
            field=unknown[0],
        )
    saved: dict[str, list[Path]] = {}
    for part in UPLOAD_PARTS:
        for i, upload in enumerate(_parts(form.getlist(part), part)):
            path = await _save_part(upload, workdir, f"{part}-{i}")
            saved.setdefault(part, []).append(path)
            named[str(path)] = f"part '{part}' ({path.name})"
    return saved


def _parts(values: list[UploadFile | str], part: str) -> list[UploadFile]:
    """The files sent as ``part``; more than one of a part that takes one is an OptionsError."""
    if len(values) > 1 and part not in _REPEATABLE:
        raise OptionsError(f"part {part} given {len(values)} times; send one file", field=part)
    return [v for v in values if isinstance(v, UploadFile)]  # text: see options_from_fields


async def _save_part(upload: UploadFile, workdir: Path, folder_name: str) -> Path:
    """The upload saved in its own folder under its client-side name (which the readers
    cite, and by whose ``.json`` suffix they tell JSON from TSV)."""
    folder = workdir / folder_name
    folder.mkdir()
    target = folder / _base_name(upload.filename, default=folder_name)
    await _save(upload, target)
    return target


def _name_uploads(exc: AdapterError, named: Mapping[str, str]) -> None:
    """The error with each saved upload's private path replaced by the part it came as."""
    for private, public in named.items():
        if exc.source == private:
            exc.source = public
        exc.message = exc.message.replace(private, public)


def _stream_and_remove(out: Path, workdir: Path) -> Iterator[bytes]:
    """The output's bytes (an NDJSON folder as one stream), then the work folder is removed."""
    try:
        files = sorted(out.iterdir()) if out.is_dir() else [out]
        for path in files:
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    yield chunk
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _outcome(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON)


async def _adapter_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AdapterError)  # noqa: S101 - registered for AdapterError only
    response = _outcome(exc.http_status, exc.to_operation_outcome())
    if isinstance(exc, AccessError):  # RFC 6750, section 3
        error = "insufficient_scope" if isinstance(exc, InsufficientScope) else "invalid_token"
        response.headers["WWW-Authenticate"] = f'Bearer realm="fhir-genomics", error="{error}"'
    return response


async def _request_error(_request: Request, exc: Exception) -> Response:
    text = str(exc) or "invalid request"
    issue = {"severity": "error", "code": "invalid", "diagnostics": text}
    return _outcome(400, {"resourceType": "OperationOutcome", "issue": [issue]})


async def _unexpected_error(_request: Request, exc: Exception) -> Response:
    log.error("unexpected error while serving a request", exc_info=exc)
    issue = {"severity": "fatal", "code": "exception", "diagnostics": "internal error; see logs"}
    return _outcome(500, {"resourceType": "OperationOutcome", "issue": [issue]})
