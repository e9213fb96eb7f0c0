"""What the adapter does with the notifications of the Subscriptions it registered.

:mod:`adapter.sync.notifications` says what a notification asks for; this module does it.

Policy decided here:

* **Recorded before answered.** :meth:`Inbound.receive` checks the notification's shape and
  stores it in the outbox database (:meth:`~adapter.sync.outbox.Outbox.record_notification`)
  before the endpoint answers 200; the work is done afterwards by :meth:`Inbound.drain` (the
  service runs it as a background task), under a lease, so a notification is never lost if the
  process dies: another drain takes it over once the lease expires.
* **Duplicates.** A rest-hook delivery of a resource version already recorded
  (``meta.versionId``) is not recorded again; a Backport event number already seen asks for
  nothing (the durable ledger, entered in the same transaction that stores the notification's
  work, so an event is never marked seen without what it asked for). Every action is
  idempotent besides: a conversion of the same file for the same patient is the same report,
  which has one open job per server.
* **Gaps.** Missing Backport events are recovered after ``recovery_wait_s`` (the IG's advice to
  wait for late deliveries) through ``$events`` when the server has it (its answer is recorded
  as a notification), else by searching the Subscription's criteria since the last event seen;
  a rest-hook ping is answered by that search since the last one (``Registration.since``).
* **A genomic data file** (:class:`~adapter.sync.notifications.ConvertFile`): the attachment's
  inline ``data``, or its ``url`` on the same server (relative to its base, such as
  ``Binary/123``, or absolute under it; a URL elsewhere is refused, since the adapter's
  credentials go to the server only), fetched with the server's auth into a private temporary
  folder, within ``max_file_bytes`` and checked against the attachment's ``size`` and SHA-1
  ``hash`` when given (https://hl7.org/fhir/R4/datatypes.html#Attachment). The report's patient
  is the DocumentReference's subject, named by its identifier of the server's
  ``patient_identifier_system`` when it has one, else by its literal id. The report is
  converted without a policy decision and queued for the same server under the Subscription's
  stored request: the :class:`~adapter.sync.worker.Sender` decides, with the server's Consents,
  before each send, and a later Consent change can still disclose more or less of it.
* **A Consent change** (:class:`~adapter.sync.notifications.ReevaluatePatient`): the notified
  Consent is a hint only; the server's Consents of the patient, read now, decide (so deliveries
  out of order end in the right state). The patient's open jobs for that server are held when
  the policy now denies any of their purposes and resumed when it permits them all
  (:meth:`~adapter.sync.outbox.Outbox.hold_patient`, ``resume_patient``; both work on all of
  the patient's jobs).
* **Retraction**, when the policy file's ``retract_secondary_findings.action`` is
  ``entered-in-error``: for each job of the patient already sent to that server whose report
  the policy still permits, the job's Bundle is decided again with the server's Consents
  (:func:`adapter.decision.decide_bundle`, audited there); each resource the job sent that the
  new decision withholds (the secondary findings, and what depends on them) and whose type has
  a ``status`` admitting ``entered-in-error`` is set to that status on the server with a
  version-aware update (:meth:`~adapter.sync.client.FhirClient.revise`). Nothing is deleted: the
  server keeps the record of what was sent, in the resource and its history
  (https://hl7.org/fhir/R4/lifecycle.html). Each retraction is an AuditEvent (type ``rest``,
  subtype ``update``, action ``U``) appended to the audit log. When the report itself is now
  denied nothing is retracted: its jobs are held and the primary results stay, for a person to
  decide.

Messages and audit entries name resources by type and id, never a patient identifier.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
import orjson

from ..convert import ConvertOptions, OutputFormat, convert_vcf
from ..decision import decide_bundle
from ..disclosure import Disclosure, audited, report_decision
from ..errors import AdapterError, InputError, OptionsError, OutboxError, ServerUnavailable
from ..fhir.codes import instant
from ..metrics import Metrics
from ..model import PatientRef, Sex
from ..policy import load_policy
from ..policy.rules import Retraction
from .client import FhirClient, client_for
from .config import ServerConfig
from .notifications import (
    ConvertFile,
    EventLedger,
    EventsRequest,
    FollowUpSearch,
    Ignored,
    ReevaluatePatient,
    Trigger,
    classify,
    parse_backport,
    plan_recovery,
    receive_notification,
    receive_rest_hook,
)
from .outbox import (
    InboundNotification,
    Job,
    JobState,
    Outbox,
    Registration,
    patient_key,
    worker_id,
)
from .worker import job_disclosure, job_keys

__all__ = ["Inbound", "Received", "Retracted"]

Resource = dict[str, Any]
#: the largest VCF fetched from a server (bytes), unless configured
MAX_FILE_BYTES: Final = 4 << 30
#: the resource types whose R4 status value set has entered-in-error (checked in R4 core
#: 4.0.1: observation-status, diagnostic-report-status, task-status, event-status,
#: specimen-status, request-status, document-reference-status)
RETRACTABLE: Final = frozenset(
    {"Observation", "DiagnosticReport", "Task", "Procedure", "Specimen", "ServiceRequest"}
    | {"DocumentReference"}
)
OPEN_STATES: Final = frozenset({JobState.PENDING, JobState.SENDING, JobState.FAILED, JobState.HELD})
BACKOFF_S: Final = 30.0
BACKOFF_CAP_S: Final = 3600.0
_GZIP_MAGIC: Final = b"\x1f\x8b"
_CHUNK: Final = 1 << 20
_AUDIT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_RESTFUL: Final = "http://hl7.org/fhir/restful-interaction"
_RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
_ADAPTER: Final = {"type": "Device", "display": "fhir-genomics-adapter"}


@dataclass(frozen=True, slots=True)
class Received:
    """What became of a delivery: recorded as notification ``id``, or a duplicate."""

    id: str | None

    @property
    def duplicate(self) -> bool:
        return self.id is None


@dataclass(frozen=True, slots=True)
class Retracted:
    """A resource marked entered-in-error on a server, and the job that had sent it."""

    job: str
    resource: str  # Type/id on the server


class Inbound:
    """Receives notifications for the registered Subscriptions and works them off."""

    def __init__(
        self,
        outbox: Outbox,
        servers: Mapping[str, ServerConfig],
        *,
        audit_log: Path,
        policy: Path | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
        lease_s: float = 600.0,
        recovery_wait_s: float = 10.0,
        metrics: Metrics | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.outbox, self._servers = outbox, servers
        self._audit_log, self._policy = audit_log, policy
        self._max_file_bytes, self._lease_s = max_file_bytes, lease_s
        self._recovery_wait = timedelta(seconds=recovery_wait_s)
        self._metrics = metrics or Metrics()
        self._transports = transports or {}
        self._now = now
        self.owner = worker_id()
        self.retracted: list[Retracted] = []

    # --- receiving -------------------------------------------------------------------------

    async def receive(self, key: str, body: bytes, named: str | None = None) -> Received | None:
        """The delivery checked and recorded; None when no Subscription has ``key``.
        ``named`` is the ``Type/id`` a rest-hook with payload PUT the resource to."""
        registration = await asyncio.to_thread(self.outbox.registration, key)
        if registration is None:
            return None
        delivery = _check(registration, body, named)
        recorded = await asyncio.to_thread(self.outbox.record_notification, key, body, delivery)
        return Received(recorded)

    # --- working off -----------------------------------------------------------------------

    async def drain(self, *, wait_s: float = 0.0) -> int:
        """Every due notification worked off; then, for up to ``wait_s`` seconds, those that
        fall due meanwhile (a gap's recovery). How many were worked off."""
        done = 0
        deadline = self._now() + timedelta(seconds=wait_s)
        while True:
            while await self.process_one():
                done += 1
            due = await asyncio.to_thread(self.outbox.next_notification_due)
            if due is None or due > deadline:
                return done
            await asyncio.sleep(max(0.0, (due - self._now()).total_seconds()))

    async def process_one(self) -> bool:
        """The next due notification worked off; False when none is due."""
        note = await asyncio.to_thread(self.outbox.claim_notification, self.owner, self._lease_s)
        if note is None:
            return False
        with contextlib.suppress(OutboxError):  # no longer ours: its new owner acts
            await self._process(note)
        return True

    async def _process(self, note: InboundNotification) -> None:
        outbox = self.outbox
        try:
            registration = await asyncio.to_thread(outbox.registration, note.subscription)
            if registration is None:
                raise OptionsError(f"no registered Subscription has the key {note.subscription}")
            if note.work is None:
                note = await asyncio.to_thread(
                    outbox.sort_notification, note, lambda ledger: _sort(note, registration, ledger)
                )
            await self._work(registration, note.work or {})
        except ServerUnavailable as unavailable:
            bound = min(BACKOFF_CAP_S, BACKOFF_S * 2.0 ** max(0, note.attempts - 1))
            at = self._now() + timedelta(seconds=bound)
            await asyncio.to_thread(outbox.retry_notification, note, unavailable, at)
        except OutboxError:
            raise
        except AdapterError as refused:
            await asyncio.to_thread(outbox.fail_notification, note, refused)
        else:
            await asyncio.to_thread(outbox.finish_notification, note)

    async def _work(self, registration: Registration, work: Mapping[str, Any]) -> None:
        config = self._config(registration)
        transport = self._transports.get(config.name)
        async with client_for(config, metrics=self._metrics, transport=transport) as client:
            acting = _Acting(self, client, config, registration)
            for trigger in work.get("triggers", []):
                await acting.act(_trigger(trigger))
            for reference in work.get("reads", []):
                await acting.read_and_act(reference)
            searches = [
                FollowUpSearch(k, tuple(map(tuple, p))) for k, p in work.get("searches", [])
            ]
            await acting.search_and_act(searches)
            if (through := work.get("recover")) is not None:
                await acting.recover(int(through))
        if (through := work.get("recover_after")) is not None:
            at = self._now() + self._recovery_wait
            await asyncio.to_thread(self.outbox.schedule_recovery, registration.key, through, at)

    def _config(self, registration: Registration) -> ServerConfig:
        config = self._servers.get(registration.server)
        if config is None:
            raise OptionsError(
                f"the Subscription {registration.key} is for the server {registration.server!r}, "
                "which is not configured",
                field="servers",
            )
        return config

    # --- decisions -------------------------------------------------------------------------

    def disclosure(
        self, job: Job, consents: Iterable[Resource], audit: bool
    ) -> tuple[Disclosure, Sex]:
        """The job's disclosure request decided now with ``consents`` (the server's) beside
        those stored with the job, as the :class:`~adapter.sync.worker.Sender` decides."""
        return job_disclosure(
            job,
            consents,
            _named_patient(orjson.loads(job.bundle)),
            at=self._now(),
            policy=self._policy,
            audit_log=self._audit_log if audit else None,
        )

    def retracts(self) -> bool:
        return load_policy(self._policy).retraction.action is Retraction.ENTERED_IN_ERROR

    def audit_retraction(self, job: Job, base_url: str, reference: str, patient: str) -> None:
        kind = reference.partition("/")[0]
        event = {
            "resourceType": "AuditEvent",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base_url}/{reference}|retracted")),
            "type": {"system": _AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"},
            "subtype": [{"system": _RESTFUL, "code": "update", "display": "update"}],
            "action": "U",
            "recorded": instant(self._now()),
            "outcome": "0",
            "outcomeDesc": f"{reference} set to entered-in-error: the policy retracts secondary "
            f"findings whose Consent was withdrawn (job {job.id})",
            "agent": [{"who": _ADAPTER, "requestor": True}],
            "source": {"observer": _ADAPTER},
            "entity": [
                {
                    "what": {"reference": f"{base_url}/{reference}"},
                    "type": {"system": _RESOURCE_TYPES, "code": kind, "display": kind},
                },
                {
                    "what": {"reference": f"{base_url}/{patient}"},
                    "type": {"system": _RESOURCE_TYPES, "code": "Patient", "display": "Patient"},
                },
            ],
        }
        audited(self._audit_log, [event])
        self.retracted.append(Retracted(job.id, reference))

    # --- files -----------------------------------------------------------------------------

    async def fetch(
        self, client: FhirClient, attachment: Mapping[str, Any], target: Path, where: str
    ) -> Path:
        """The attachment's content written to ``target`` (``.gz`` added when gzipped)."""
        limit = self._max_file_bytes
        size = attachment.get("size")
        if isinstance(size, int) and size > limit:
            raise InputError(
                f"the attachment is {size} bytes, over the limit of {limit}",
                source=where,
                field="DocumentReference.content.attachment.size",
            )
        data = attachment.get("data")
        if isinstance(data, str):
            content = _base64(data, limit, where)
        else:
            content = await self._download(client, attachment.get("url"), limit, where)
        _check_content(attachment, content, where)
        if content.startswith(_GZIP_MAGIC):
            target = target.with_name(target.name + ".gz")
        with target.open("wb") as out:
            for start in range(0, len(content), _CHUNK):
                out.write(content[start : start + _CHUNK])
        return target

    async def _download(self, client: FhirClient, url: Any, limit: int, where: str) -> bytes:
        field = "DocumentReference.content.attachment.url"
        if not isinstance(url, str) or not url:
            raise InputError("the attachment has neither data nor a url", source=where, field=field)
        path = _on_server(client.base_url, url)
        if path is None:
            raise InputError(
                "the attachment's url is not on the notifying server; the adapter fetches files "
                "only from the server it sends its credentials to",
                source=where,
                field=field,
            )
        response = await client.send("GET", path, what=f"the attachment of {where}")
        if len(response.content) > limit * 2:  # a Binary's base64 is 4/3 of its content
            raise InputError(f"the attachment is over the limit of {limit} bytes", source=where)
        media = response.headers.get("Content-Type", "").split(";")[0].strip()
        if media in {"application/fhir+json", "application/json"}:
            binary = orjson.loads(response.content)
            if isinstance(binary, dict) and binary.get("resourceType") == "Binary":
                return _base64(str(binary.get("data") or ""), limit, where)
        if len(response.content) > limit:
            raise InputError(f"the attachment is over the limit of {limit} bytes", source=where)
        return response.content


class _Acting:
    """One notification's work on one server."""

    def __init__(
        self,
        inbound: Inbound,
        client: FhirClient,
        config: ServerConfig,
        registration: Registration,
    ) -> None:
        self.inbound, self.client, self.config = inbound, client, config
        self.registration = registration
        self.outbox = inbound.outbox

    async def act(self, trigger: Trigger) -> None:
        if isinstance(trigger, ConvertFile):
            await self.convert(trigger)
        elif isinstance(trigger, ReevaluatePatient):
            await self.reevaluate(trigger)

    async def read_and_act(self, reference: str) -> None:
        target = _on_server(self.client.base_url, reference)
        if target is None:
            return  # a focus on another server is not ours to read
        kind, _, rid = target.partition("/")
        resource, _ = await self.client.read(kind, rid.split("/")[0])
        await self.act(classify(resource))

    async def search_and_act(self, searches: Iterable[FollowUpSearch]) -> None:
        latest: datetime | None = None
        for search in searches:
            for resource in await self.client.search(search.resource_type, dict(search.params)):
                await self.act(classify(resource))
                updated = _last_updated(resource)
                latest = updated if latest is None or (updated and updated > latest) else latest
        if latest is not None:
            await asyncio.to_thread(self.outbox.advance_since, self.registration.key, latest)

    async def recover(self, through: int) -> None:
        """The events still missing up to ``through``: asked of ``$events`` (the answer is
        recorded as a notification), else found by searching, then entered as seen."""
        subscribed = self.registration.subscribed
        ledger = self.outbox.ledger()
        missing, recovery = await asyncio.to_thread(plan_recovery, subscribed, ledger, through)
        if not missing or recovery is None:
            return
        if isinstance(recovery, EventsRequest):
            answer = await self.client.send("GET", recovery.path, params=dict(recovery.params))
            key = self.registration.key
            await asyncio.to_thread(self.outbox.record_notification, key, answer.content)
            return
        await self.search_and_act(recovery)
        for number in missing:
            await asyncio.to_thread(ledger.record, subscribed.key, number, None)

    # --- a genomic data file ---------------------------------------------------------------

    async def convert(self, trigger: ConvertFile) -> Job:
        patient_id = self._patient_id(trigger.patient, trigger.document, "DocumentReference")
        patient, _ = await self.client.read("Patient", patient_id)
        workdir = Path(tempfile.mkdtemp(prefix="fhir-genomics-inbound-"))
        try:
            where = trigger.document
            source = await self.inbound.fetch(
                self.client, trigger.attachment, workdir / "input.vcf", where
            )
            out = workdir / "report.json"
            options = ConvertOptions(
                patient=self.patient_ref(patient, patient_id),
                output_format=OutputFormat.TRANSACTION,
                input_name=where,
            )
            await asyncio.to_thread(convert_vcf, source, out, options)
            raw = out.read_bytes()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        report, patient_name = job_keys(orjson.loads(raw))
        request = dict(self.registration.request)
        birth = patient.get("birthDate")
        if not request.get("birth_date") and isinstance(birth, str) and len(birth) == 10:
            request["birth_date"] = birth  # a full date: the minor rule needs one
        return await asyncio.to_thread(
            self.outbox.enqueue,
            self.registration.server,
            report,
            patient_name,
            raw,
            request=request,
        )

    def patient_ref(self, patient: Resource, patient_id: str) -> PatientRef:
        """The report's subject: the Patient's MRN of the configured system, else its id."""
        system = self.config.patient_identifier_system
        for identifier in patient.get("identifier", []):
            if system and identifier.get("system") == system and identifier.get("value"):
                return PatientRef(identifier_system=system, identifier_value=identifier["value"])
        return PatientRef(id=patient_id)

    def _patient_id(self, reference: str | None, where: str, kind: str) -> str:
        target = None if reference is None else _on_server(self.client.base_url, reference)
        if target is None or not target.startswith("Patient/"):
            raise InputError(
                "names no Patient of this server as its subject",
                source=where,
                field=f"{kind}.{'subject' if kind == 'DocumentReference' else 'patient'}",
            )
        return target.split("/")[1]

    # --- a Consent change ------------------------------------------------------------------

    async def reevaluate(self, trigger: ReevaluatePatient) -> None:
        patient_id = self._patient_id(trigger.patient, trigger.consent, "Consent")
        literal = f"Patient/{patient_id}"
        patient, _ = await self.client.read("Patient", patient_id)
        consents = await self.client.search("Consent", {"patient": literal})
        for key in self._patient_keys(patient, literal):
            jobs = await asyncio.to_thread(self.outbox.patient_jobs, key, self.registration.server)
            await self._hold_or_resume(key, [j for j in jobs if j.state in OPEN_STATES], consents)
            if self.inbound.retracts():
                for job in (j for j in jobs if j.state is JobState.SENT):
                    await self.retract(job, consents, literal)

    def _patient_keys(self, patient: Resource, literal: str) -> set[str]:
        """The outbox's names the patient's jobs may have: by each identifier of the
        configured system (any system when none is), and by the literal reference."""
        system = self.config.patient_identifier_system
        keys = {patient_key("", literal)}
        for identifier in patient.get("identifier", []):
            found, value = identifier.get("system"), identifier.get("value")
            if found and value and (system is None or found == system):
                keys.add(patient_key(found, value))
        return keys

    async def _hold_or_resume(self, key: str, jobs: list[Job], consents: list[Resource]) -> None:
        if not jobs:
            return
        denials = []
        for job in jobs:
            disclosure, _ = self.inbound.disclosure(job, consents, audit=False)
            decision = report_decision(disclosure)
            if not decision.permitted:
                denials += [r.text for r in decision.reasons]
        if denials:
            reason = "consent changed; the policy now denies: " + "; ".join(dict.fromkeys(denials))
            await asyncio.to_thread(self.outbox.hold_patient, key, reason)
        else:
            await asyncio.to_thread(self.outbox.resume_patient, key)

    async def retract(self, job: Job, consents: list[Resource], patient: str) -> None:
        """The resources ``job`` sent that a decision now withholds, entered-in-error."""
        bundle = orjson.loads(job.bundle)
        disclosure, sex = self.inbound.disclosure(job, consents, audit=True)
        result = await asyncio.to_thread(decide_bundle, bundle, disclosure, sex=sex)
        if result.bundle is None:
            return  # the report is denied: held, not retracted (see the module's policy)
        kept = {e.get("fullUrl") for e in result.bundle.get("entry", [])}
        ids: Mapping[str, str] = job.progress.get("ids", {})
        for entry in bundle.get("entry", []):
            sent = ids.get(entry.get("fullUrl", ""))
            if entry.get("fullUrl") in kept or sent is None:
                continue
            kind, _, rid = sent.partition("/")
            if kind in RETRACTABLE and await self.client.revise(kind, rid, _entered_in_error):
                self.inbound.audit_retraction(job, self.client.base_url, sent, patient)


# --- sorting a notification (pure, in the ledger's transaction) ------------------------------


def _sort(
    note: InboundNotification, registration: Registration, ledger: EventLedger
) -> dict[str, Any]:
    """The notification's work as JSON: triggers, reads, searches, and the last missing
    event number to recover after the wait."""
    result = receive_notification(
        note.body,
        registration.subscribed,
        ledger=ledger,
        since=registration.since,
        source=f"notification {note.id}",
    )
    work: dict[str, Any] = {
        "kind": result.kind.value,
        "triggers": [_trigger_json(t) for t in result.triggers if not isinstance(t, Ignored)],
        "reads": list(result.reads),
        "searches": [[s.resource_type, [list(p) for p in s.params]] for s in result.searches],
    }
    if result.missing:
        work["recover_after"] = max(result.missing)
    return work


def _trigger_json(trigger: ConvertFile | ReevaluatePatient) -> dict[str, Any]:
    if isinstance(trigger, ConvertFile):
        return {
            "convert": trigger.document,
            "attachment": dict(trigger.attachment),
            "patient": trigger.patient,
        }
    return {"reevaluate": trigger.consent, "patient": trigger.patient, "revoked": trigger.revoked}


def _trigger(data: Mapping[str, Any]) -> Trigger:
    if "convert" in data:
        return ConvertFile(data["convert"], data["attachment"], data.get("patient"))
    return ReevaluatePatient(data["reevaluate"], data["patient"], bool(data.get("revoked")))


def _check(registration: Registration, body: bytes, named: str | None) -> str | None:
    """The delivery's shape checked before it is recorded (a malformed one is refused now,
    so the server sees the error); its duplicate key: ``Type/id/_history/vid`` of a rest-hook
    payload, None otherwise."""
    source = f"notification for Subscription/{registration.subscription_id}"
    if registration.topic is not None:
        try:
            bundle = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise InputError(f"the body is not JSON: {error}", source=source) from None
        if not isinstance(bundle, dict):
            raise InputError("the body is not a FHIR Bundle", source=source)
        parse_backport(bundle, source=source)
        return None
    result = receive_rest_hook(body, registration.subscribed, since=None, source=source)
    if not body.strip():
        return None
    resource = orjson.loads(body)
    shown = f"{resource.get('resourceType')}/{resource.get('id')}"
    if named is not None and named != shown:
        raise InputError(f"{shown} was delivered to the path of {named}", source=source)
    version = resource.get("meta", {}).get("versionId")
    return f"{shown}/_history/{version}" if result.triggers and version else None


# --- small helpers -----------------------------------------------------------------------------


def _on_server(base_url: str, reference: str) -> str | None:
    """``reference`` relative to the server's base (``Type/id...``), None when it points
    elsewhere. A relative reference is the server's own."""
    if "://" not in reference:
        return reference.lstrip("/") or None
    prefix = base_url.rstrip("/") + "/"
    return reference[len(prefix) :] or None if reference.startswith(prefix) else None


def _named_patient(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """The patient as the report's Bundle names it (the form its Consents must name)."""
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "DiagnosticReport":
            reference = str(resource.get("subject", {}).get("reference", ""))
            if reference.startswith("Patient?identifier="):
                system, _, value = reference.removeprefix("Patient?identifier=").partition("|")
                return {"identifier": {"system": system, "value": value}}
            return {"reference": reference}
    raise OptionsError("the job's Bundle has no DiagnosticReport", field="Bundle.entry")


def _entered_in_error(resource: Resource) -> Resource | None:
    if resource.get("status") == "entered-in-error":
        return None
    return {**resource, "status": "entered-in-error"}


def _last_updated(resource: Mapping[str, Any]) -> datetime | None:
    text = resource.get("meta", {}).get("lastUpdated")
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def _base64(data: str, limit: int, where: str) -> bytes:
    if len(data) * 3 // 4 > limit:
        raise InputError(f"the attachment is over the limit of {limit} bytes", source=where)
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error as error:
        raise InputError(
            f"the attachment's data is not base64: {error}",
            source=where,
            field="DocumentReference.content.attachment.data",
        ) from None


def _check_content(attachment: Mapping[str, Any], content: bytes, where: str) -> None:
    """The attachment's ``size`` and ``hash`` (SHA-1, base64), when it gives them."""
    size, digest = attachment.get("size"), attachment.get("hash")
    field = "DocumentReference.content.attachment"
    if isinstance(size, int) and size != len(content):
        raise InputError(
            f"the attachment says {size} bytes but has {len(content)}",
            source=where,
            field=f"{field}.size",
        )
    actual = base64.b64encode(hashlib.sha1(content).digest()).decode()  # noqa: S324 - R4's hash
    if isinstance(digest, str) and digest != actual:
        raise InputError(
            "the attachment's content does not match its SHA-1 hash",
            source=where,
            field=f"{field}.hash",
        )
