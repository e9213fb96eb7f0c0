"""Sending the outbox's jobs to their servers, exactly once in effect.

Policy:

* **Claim, then lease.** A worker takes one due job at a time under a lease, extends it after
  every chunk, and stops at once when the outbox says the job is no longer its own (another
  worker took it over, or a Consent change held it, or an operator cancelled it).
* **The policy is asked again before every send**, because consent may have changed since the
  conversion: the patient's Consents are read from the server (every Consent whose patient is
  the resolved Patient) and joined to those stored with the job; the decision is
  :func:`adapter.decision.decide_bundle`'s, under the job's stored request (purpose,
  recipient, indication, birth date, sex, break-glass) and the deployment's policy file, and
  it is audited there. A deny cancels the job; withheld findings are never sent.
* **Resuming** uses the job's stored progress only if the Bundle decided now is the one the
  progress was made for (its SHA-256 is kept beside it); otherwise the push starts over,
  which only updates what is already there.
* **HL7 v2 receivers.** A job for an ``mllp://`` server is decided under its own Consents
  alone (such a server holds no Consent to read), written as one ORU^R01
  (:func:`adapter.hl7v2_oru.oru_message`, under the server's ``hl7v2`` header settings) and
  sent over MLLP (:mod:`adapter.sync.mllp_client`). Its control ID (MSH-10) derives from the
  job and the decided Bundle, so a resend after a crash or a lost ACK carries the same one. The
  message names the patient by identifier (PID-3) alone: no birth date or sex the Bundle does
  not hold.
* **Outcomes.** Sent: the job is complete. A server that still fails after the client's
  bounded retries (429, 5xx, no connection): the job is due again after a backoff that grows
  with its attempts (30 s doubling, up to an hour, with jitter). A refusal no retry can fix
  (a 4xx, no or several Patients for the MRN, our credentials refused, a Consent that cannot
  be read, an ACK of AE, a report v2 cannot carry): the job is parked as failed for an
  operator, with the server's OperationOutcome or ACK.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

import httpx
import orjson

from ..decision import decide_bundle
from ..disclosure import Disclosure, disclosure_request
from ..errors import (
    DisclosureDenied,
    OptionsError,
    OutboxError,
    PolicyError,
    ReportError,
    ServerUnavailable,
    SyncError,
)
from ..hl7v2_oru import oru_message
from ..metrics import Metrics
from ..model import Sex
from ..policy import consent_from_dict
from ..readers.fhir_report import read_report_bundle
from .client import FhirClient, client_for
from .config import Hl7v2Settings, ServerConfig
from .mllp_client import send_message
from .outbox import Job, JobSummary, Outbox, patient_key, worker_id
from .push import Progress, push_bundle, resolve_patient

__all__ = ["Sender", "job_disclosure", "job_keys", "send_request"]

Resource = dict[str, Any]
JOB_BACKOFF_S: Final = 30.0
JOB_BACKOFF_CAP_S: Final = 3600.0
_PATIENT_QUERY: Final = "Patient?identifier="


def send_request(
    *,
    purpose: str,
    consents: list[Resource] | None = None,
    recipient: str | None = None,
    indication: list[str] | None = None,
    birth_date: str | None = None,
    sex: Sex = Sex.UNKNOWN,
    break_glass: bool = False,
) -> dict[str, Any]:
    """What a job is sent under, as the outbox stores it (JSON)."""
    return {
        "purpose": purpose,
        "consents": consents or [],
        "recipient": recipient,
        "indication": indication or [],
        "birth_date": birth_date,
        "sex": sex.value,
        "break_glass": break_glass,
    }


def job_keys(bundle: Resource) -> tuple[str, str]:
    """The outbox's names for a report Bundle: its report (the DiagnosticReport's first
    identifier, ``system|value``) and its patient (opaque, :func:`patient_key`)."""
    reports = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == "DiagnosticReport"
    ]
    identifiers = [i for r in reports[:1] for i in r.get("identifier", [])[:1]]
    if not identifiers or "value" not in identifiers[0]:
        raise OptionsError(
            "the Bundle has no DiagnosticReport with an identifier to send it by",
            field="Bundle.entry.resource.identifier",
        )
    report = f"{identifiers[0].get('system', '')}|{identifiers[0]['value']}"
    subject = _single_subject(bundle)
    if subject.startswith(_PATIENT_QUERY):
        system, _, value = unquote(subject.removeprefix(_PATIENT_QUERY)).partition("|")
        return report, patient_key(system, value)
    return report, patient_key("", subject)


def job_disclosure(
    job: Job,
    found: Iterable[Resource],
    named: Resource,
    *,
    at: datetime,
    policy: Path | None,
    audit_log: Path | None,
    patient: Mapping[str, Any] | None = None,
) -> tuple[Disclosure, Sex]:
    """The job's stored request decided at ``at``: its own Consents beside those ``found`` on
    the server (renamed to the patient as the Bundle ``named`` them, since they were found by
    the server's Patient id), with the server's ``patient`` birth date and gender where the
    request has none."""
    request, known = job.request, patient or {}
    consents = [
        consent_from_dict(c, source=f"job {job.id}: consents[{i}]")
        for i, c in enumerate(request.get("consents", []))
    ] + [consent_from_dict({**c, "patient": named}, source=f"Consent/{c.get('id')}") for c in found]
    disclosure = disclosure_request(
        consents,
        purpose=request.get("purpose"),
        at=at,
        policy=policy,
        indication=request.get("indication", []),
        birth_date=request.get("birth_date") or known.get("birth_date"),
        recipient=request.get("recipient"),
        break_glass=bool(request.get("break_glass")),
        audit_log=audit_log,
    )
    sex = Sex(request.get("sex", Sex.UNKNOWN.value))
    if sex is Sex.UNKNOWN and known.get("gender") in {Sex.MALE.value, Sex.FEMALE.value}:
        sex = Sex(known["gender"])
    return disclosure, sex


class Sender:
    """One worker of the outbox."""

    def __init__(
        self,
        outbox: Outbox,
        servers: Mapping[str, ServerConfig],
        *,
        audit_log: Path,
        policy: Path | None = None,
        lease_s: float = 300.0,
        metrics: Metrics | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._outbox, self._servers = outbox, servers
        self._audit_log, self._policy = audit_log, policy
        self._lease_s, self._now = lease_s, now
        self._metrics = metrics or Metrics()
        self._transports = transports or {}
        self.owner = worker_id()

    async def drain(self) -> list[JobSummary]:
        """Every job due now, one after another; what became of each."""
        done = []
        while (summary := await self.send_one()) is not None:
            done.append(summary)
        return done

    async def send_one(self) -> JobSummary | None:
        """The next due job sent (or rescheduled, parked, cancelled); None when none is due."""
        job = await asyncio.to_thread(self._outbox.claim, self.owner, self._lease_s)
        if job is None:
            return None
        try:
            return await self._send(job)
        except OutboxError:
            # the job is no longer ours (held, cancelled, taken over): its new state stands
            return await asyncio.to_thread(self._outbox.get, job.id) or job

    async def _send(self, job: Job) -> JobSummary:
        config = self._servers.get(job.server)
        if config is None:
            error = OptionsError(f"no server named {job.server!r} is configured")
            return await asyncio.to_thread(self._outbox.park, job, error)
        transport = self._transports.get(job.server)
        try:
            if config.hl7v2 is not None:
                await self._deliver(config, config.hl7v2, job)
            else:
                async with client_for(config, metrics=self._metrics, transport=transport) as c:
                    await self._push(c, config, job)
        except DisclosureDenied as denied:
            return await asyncio.to_thread(self._outbox.cancel, job.id, str(denied))
        except ServerUnavailable as unavailable:
            pause = max(_job_backoff(job.attempts), unavailable.retry_after or 0.0)
            at = self._now() + timedelta(seconds=pause)
            return await asyncio.to_thread(self._outbox.retry_later, job, unavailable, at)
        except (SyncError, PolicyError, ReportError, OptionsError) as refused:
            return await asyncio.to_thread(self._outbox.park, job, refused)
        return await asyncio.to_thread(self._outbox.complete, job)

    async def _push(self, client: FhirClient, config: ServerConfig, job: Job) -> None:
        bundle: Resource = orjson.loads(job.bundle)
        rewrite, patient = await _patient(client, bundle)
        decided = await self._decide(client, bundle, patient, job)
        digest = _digest(decided)
        stored = job.progress
        progress = Progress.from_json(stored if stored.get("bundle") == digest else None)
        transactions = config.transactions
        if transactions is None:
            transactions = "transaction" in await client.interactions()

        async def save(done: Progress) -> None:
            record = {**done.to_json(), "bundle": digest}
            await asyncio.to_thread(self._outbox.save_progress, job, record)
            await asyncio.to_thread(self._outbox.extend_lease, job, self._lease_s)

        await push_bundle(
            client,
            decided,
            max_entries=config.max_entries,
            transactions=transactions,
            rewrite=rewrite,
            progress=progress,
            on_chunk=save,
            concurrency=config.concurrency,
        )

    async def _deliver(self, config: ServerConfig, settings: Hl7v2Settings, job: Job) -> None:
        """The job's report, decided now, as an ORU^R01 to an MLLP server."""
        bundle: Resource = orjson.loads(job.bundle)
        decided = await self._decided(bundle, [], _named(_single_subject(bundle)), job, None)
        control_id = hashlib.sha256(f"{job.id}|{_digest(decided)}".encode()).hexdigest()[:20]
        text = await asyncio.to_thread(
            _oru, decided, settings, control_id=control_id, now=self._now(), source=f"job {job.id}"
        )
        await send_message(config, text.encode("utf-8"), control_id)

    async def _decide(
        self, client: FhirClient, bundle: Resource, patient: Resource, job: Job
    ) -> Resource:
        """The Bundle the policy lets go now, under the Consents of the job and the server."""
        found = await client.search("Consent", {"patient": patient["reference"]})
        return await self._decided(bundle, found, patient["named"], job, patient)

    async def _decided(
        self,
        bundle: Resource,
        found: list[Resource],
        named: Resource,
        job: Job,
        patient: Resource | None,
    ) -> Resource:
        """The Bundle the policy lets go now; DisclosureDenied when it lets nothing go."""
        disclosure, sex = job_disclosure(
            job,
            found,
            named,
            at=self._now(),
            policy=self._policy,
            audit_log=self._audit_log,
            patient=patient,
        )
        result = await asyncio.to_thread(decide_bundle, bundle, disclosure, sex=sex)
        if result.bundle is None:
            reasons = "; ".join(r.text for r in result.decision.reasons)
            raise DisclosureDenied(f"the policy denies this send now: {reasons}")
        return result.bundle


async def _patient(client: FhirClient, bundle: Resource) -> tuple[dict[str, str], Resource]:
    """The reference rewrite that names the patient as the server knows it, and the patient:
    as the Bundle names it (``named``), as the server does (``reference``), and the server's
    ``birthDate`` and ``gender`` (for the minor and X-linked rules, when the job has none)."""
    query = _single_subject(bundle)
    named = _named(query)
    if "identifier" in named:
        identifier = named["identifier"]
        reference = await resolve_patient(client, identifier["system"], identifier["value"])
        rewrite = {query: reference}
    else:
        reference, rewrite = query, {}
    record, _ = await client.read("Patient", reference.removeprefix("Patient/"))
    found = {"birth_date": record.get("birthDate"), "gender": record.get("gender")}
    return rewrite, {"reference": reference, "named": named, **found}


def _oru(
    bundle: Resource, settings: Hl7v2Settings, *, control_id: str, now: datetime, source: str
) -> str:
    """A decided report Bundle as the ORU^R01 an MLLP server's settings ask for."""
    return oru_message(
        read_report_bundle(bundle, source=source),
        control_id=control_id,
        now=now,
        sending=(settings.sending_application, settings.sending_facility),
        receiving=(settings.receiving_application, settings.receiving_facility),
        authorities=settings.authorities,
    )


def _named(query: str) -> Resource:
    """The patient as a conditional (by identifier) or literal reference names it."""
    if query.startswith(_PATIENT_QUERY):
        system, _, value = unquote(query.removeprefix(_PATIENT_QUERY)).partition("|")
        return {"identifier": {"system": system, "value": value}}
    return {"reference": query}


def _single_subject(bundle: Resource) -> str:
    """The one patient every subject names: a conditional or a literal Patient reference."""
    named = {r for r in _subject_references(bundle) if r.startswith(("Patient/", _PATIENT_QUERY))}
    if len(named) != 1:
        raise OptionsError(
            f"a report is sent for one patient; this one names {len(named)}",
            field="Bundle.entry.resource.subject",
        )
    return named.pop()


def _subject_references(bundle: Resource) -> set[str]:
    found = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        for key in ("subject", "patient"):
            value = resource.get(key)
            if isinstance(value, dict) and isinstance(value.get("reference"), str):
                found.add(value["reference"])
    return found


def _digest(bundle: Resource) -> str:
    """What the progress of a push is valid for: the decided Bundle, but for the time a
    Provenance records (decided again at each attempt; its id does not depend on it)."""
    stable = [
        {**e, "resource": {k: v for k, v in e["resource"].items() if k != "recorded"}}
        if e.get("resource", {}).get("resourceType") == "Provenance"
        else e
        for e in bundle.get("entry", [])
    ]
    return hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _job_backoff(attempts: int) -> float:
    bound = min(JOB_BACKOFF_CAP_S, JOB_BACKOFF_S * 2.0 ** max(0, attempts - 1))
    return bound / 2 + random.random() * bound / 2  # noqa: S311 - jitter, not a secret
