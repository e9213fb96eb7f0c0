"""The outbox's worker (:class:`adapter.sync.worker.Sender`) against real servers: a VCF's
report from a durable job to HAPI FHIR under the Consent the server holds, checked against the
IG; a revoked or missing Consent withholding the secondary findings; a purpose the policy
never permits cancelled and audited; an unknown MRN parked without PHI; a server answering 503
(sekmet-fhir behind the fault proxy) retried on the outbox's schedule; one job and one copy per
report, and stored progress honoured only for the Bundle it was made for.

Which of ``secondary_findings.vcf``'s calls are secondary findings (README, "Consent and
secondary-finding policy"; ``adapter/disclosure.py``): MUTYH (two P alleles in trans), TTN
(a missense), HFE (heterozygous p.Cys282Tyr), BRCA2 (a P frameshift and a VUS) and LDLR (P,
placed by ClinVar's GENEINFO only) are ACMG-listed genes; ACMG reports the MUTYH pair, the
BRCA2 frameshift and LDLR. CFTR (not on the list) and a benign call in no gene are primary.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fault_proxy import Fault, FaultKind, FaultProxy
from fhir_servers import Hapi, hapi_errors
from postgres_server import new_database
from sekmet_server import Sekmet

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf
from adapter.errors import ServerUnavailable
from adapter.model import PatientRef
from adapter.sync.config import BearerAuth, NoAuth, ServerConfig
from adapter.sync.outbox import Job, JobState, JobSummary, Outbox, open_outbox, patient_key
from adapter.sync.push import Progress
from adapter.sync.worker import Sender, send_request

DATA = Path(__file__).resolve().parent / "data"
VCF = DATA / "vcf" / "secondary_findings.vcf"
OPT_IN = DATA / "consent" / "r4_secondary_findings_opt_in.json"
MRN = "https://hospital.test/mrn"
#: the decisions' instant: inside the opt-in Consent's period (2024-03-01 to 2026-12-31)
DECIDED_AT = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
#: an adult's: the minor rule needs the birth date before any secondary finding goes
BIRTH_DATE = "1980-05-17"
GENE_STUDIED = "48018-6"  # LOINC "Gene studied [ID]"
VARIANT = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
LISTED = frozenset({"MUTYH", "TTN", "HFE", "BRCA2", "LDLR"})  # the fixture's ACMG-listed genes
#: the Variants on the server, by gene (None: no gene), with and without the opt-in
WITH_OPT_IN = Counter({"MUTYH": 2, "BRCA2": 1, "LDLR": 1, "CFTR": 1, None: 1})
PRIMARY_ONLY = Counter({"CFTR": 1, None: 1})
Resource = dict[str, Any]


class Clock:
    """The outbox's and the worker's one clock, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock() -> Clock:
    return Clock(DECIDED_AT)


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/outbox.db"
    return new_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Iterator[Outbox]:
    box = open_outbox(f"sqlite:///{tmp_path}/outbox.db", now=clock)
    try:
        yield box
    finally:
        box.close()


# --- the report and the servers --------------------------------------------------------------


def _new_patient(fhir: httpx.Client) -> tuple[str, str]:
    """A Patient with a fresh MRN on the server: the MRN and ``Patient/<id>``."""
    value = f"WORKER-{uuid.uuid4()}"
    body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
    response = fhir.post("/Patient", json=body)
    assert response.status_code == 201, response.text
    return value, f"Patient/{response.json()['id']}"


def _report(value: str, folder: Path) -> Resource:
    """The VCF's transaction Bundle for the patient with MRN ``value``, no policy applied."""
    out = folder / f"{value}.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN, identifier_value=value),
        issued=DECIDED_AT,
        output_format=OutputFormat.TRANSACTION,
        disclosure=None,
    )
    convert_vcf(VCF, out, options)
    bundle: Resource = orjson.loads(out.read_bytes())
    return bundle


def _report_key(bundle: Resource) -> str:
    report = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DiagnosticReport"
    )
    identifier = report["identifier"][0]
    return f"{identifier['system']}|{identifier['value']}"


def _enqueue(
    outbox: Outbox,
    server: str,
    bundle: Resource,
    value: str,
    *,
    purpose: str = "TREAT",
    birth_date: str | None = None,
) -> Job:
    return outbox.enqueue(
        server,
        _report_key(bundle),
        patient_key(MRN, value),
        orjson.dumps(bundle),
        request=send_request(purpose=purpose, birth_date=birth_date),
    )


def _opt_in(fhir: httpx.Client, patient: str) -> str:
    """The opt-in Consent fixture stored on the server for ``patient``; its id. The
    Organizations it names are made first: HAPI refuses references to nothing."""
    text = OPT_IN.read_text(encoding="utf-8").replace('"Patient/pat-1001"', f'"{patient}"')
    consent = orjson.loads(text)
    del consent["id"]
    consent["identifier"][0]["value"] += f"-{uuid.uuid4()}"
    for org in ("lab-1", "insurer-7"):
        body = {"resourceType": "Organization", "id": org, "name": org}
        assert fhir.put(f"/Organization/{org}", json=body).status_code in {200, 201}
    response = fhir.post("/Consent", json=consent)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _stored(fhir: httpx.Client, patient: str) -> list[Resource]:
    """The Observations and DiagnosticReports the server holds about ``patient``."""
    found = []
    for kind in ("Observation", "DiagnosticReport"):
        page = fhir.get(f"/{kind}", params={"subject": patient, "_count": "500"}).json()
        assert "next" not in {link["relation"] for link in page.get("link", [])}
        found += [e["resource"] for e in page.get("entry", [])]
    return found


def _gene(variant: Resource) -> str | None:
    for component in variant.get("component", []):
        if component["code"]["coding"][0]["code"] == GENE_STUDIED:
            value = component["valueCodeableConcept"]
            return value.get("text") or value["coding"][0]["display"]
    return None


def _variant_genes(resources: list[Resource]) -> Counter[str | None]:
    return Counter(_gene(r) for r in resources if VARIANT in r.get("meta", {}).get("profile", []))


def _full_urls(bundle: Resource, genes: frozenset[str]) -> set[str]:
    """The fullUrls of the Bundle's Variants in ``genes``."""
    return {
        e["fullUrl"]
        for e in bundle["entry"]
        if VARIANT in e["resource"].get("meta", {}).get("profile", [])
        and _gene(e["resource"]) in genes
    }


def _audit(log: Path) -> list[Resource]:
    return [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]


def _drain(sender: Sender) -> list[JobSummary]:
    return asyncio.run(sender.drain())


def _hapi_sender(
    outbox: Outbox, hapi: Hapi, audit: Path, clock: Clock, max_entries: int = 10
) -> Sender:
    config = ServerConfig("hapi", hapi.base, NoAuth(), max_entries=max_entries)
    return Sender(outbox, {"hapi": config}, audit_log=audit, now=clock)


def _send_opted_in(
    fhir: httpx.Client, hapi: Hapi, outbox: Outbox, tmp_path: Path, clock: Clock
) -> tuple[str, str, str, Resource, JobSummary]:
    """A new patient who opted in on the server, and the report sent for them: MRN, Patient
    reference, Consent id, Bundle, and the job's end."""
    value, patient = _new_patient(fhir)
    consent = _opt_in(fhir, patient)
    bundle = _report(value, tmp_path)
    job = _enqueue(outbox, "hapi", bundle, value, birth_date=BIRTH_DATE)
    done = _drain(_hapi_sender(outbox, hapi, tmp_path / "audit.ndjson", clock))
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.SENT)], done
    return value, patient, consent, bundle, done[0]


# --- 1. end to end on HAPI -------------------------------------------------------------------


@pytest.mark.hapi
def test_a_job_reaches_hapi_whole_with_the_findings_the_servers_consent_permits(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, outbox_url: str, clock: Clock
) -> None:
    box = open_outbox(outbox_url, now=clock)
    try:
        value, patient, consent, bundle, sent = _send_opted_in(fhir, hapi, box, tmp_path, clock)
        job = box.get(sent.id)
    finally:
        box.close()
    assert job is not None and job.state is JobState.SENT and job.last_error is None
    assert len(Progress.from_json(job.progress).done) > 1  # split to 10 entries per transaction
    stored = _stored(fhir, patient)
    assert _variant_genes(stored) == WITH_OPT_IN
    brca2 = next(r for r in stored if _gene(r) == "BRCA2")
    assert "secondary-finding" in {label["code"] for label in brca2["meta"]["security"]}
    ids = job.progress["ids"]
    brca2_sent = [ids[u] for u in _full_urls(bundle, frozenset({"BRCA2"})) if u in ids]
    assert brca2_sent == [f"Observation/{brca2['id']}"]  # the P frameshift, not the VUS
    assert all(r["subject"]["reference"] == patient for r in stored)
    errors = [e for r in stored for e in hapi_errors(fhir, r)]
    assert errors == []
    provenances = [i for i in job.progress["ids"].values() if i.startswith("Provenance/")]
    assert len(provenances) == 1 + 3  # the report's and each disclosed gene's
    for provenance in provenances:
        assert fhir.get(f"/{provenance}").status_code == 200
    events = _audit(tmp_path / "audit.ndjson")
    assert {e["outcome"] for e in events} == {"0", "8"}  # permits, and TTN and HFE denied
    deciding = {x["what"]["reference"] for e in events for x in e["entity"][1:]}
    assert f"Consent/{consent}" in deciding
    assert value not in orjson.dumps(job.as_json()).decode()


# --- 2. consent revoked, or never given ------------------------------------------------------


@pytest.mark.hapi
def test_without_a_consent_in_force_on_the_server_secondary_findings_are_withheld(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, _, consent, bundle, first = _send_opted_in(fhir, hapi, outbox, tmp_path, clock)
    revoked = {**fhir.get(f"/Consent/{consent}").json(), "status": "inactive"}
    assert fhir.put(f"/Consent/{consent}", json=revoked).status_code == 200
    again = _enqueue(
        outbox, "hapi", bundle, value, birth_date=BIRTH_DATE
    )  # a new job: the first one is finished
    assert again.id != first.id
    other, other_patient = _new_patient(fhir)
    fresh = _enqueue(outbox, "hapi", _report(other, tmp_path), other)
    done = _drain(_hapi_sender(outbox, hapi, tmp_path / "audit.ndjson", clock))
    assert [(s.id, s.state) for s in done] == [
        (again.id, JobState.SENT),
        (fresh.id, JobState.SENT),
    ]
    resent = set(done[0].progress["ids"])
    assert resent & _full_urls(bundle, LISTED) == set()  # the revoked Consent was read
    assert _full_urls(bundle, frozenset({"CFTR"})) <= resent
    assert _variant_genes(_stored(fhir, other_patient)) == PRIMARY_ONLY


# --- 3. a purpose never permitted ------------------------------------------------------------


@pytest.mark.hapi
def test_a_marketing_send_is_cancelled_audited_and_never_reaches_the_server(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, patient = _new_patient(fhir)
    _opt_in(fhir, patient)  # whatever a Consent says
    job = _enqueue(outbox, "hapi", _report(value, tmp_path), value, purpose="HMARKT")
    audit = tmp_path / "audit.ndjson"
    done = _drain(_hapi_sender(outbox, hapi, audit, clock))
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.CANCELLED)]
    assert done[0].reason is not None and "HMARKT" in done[0].reason
    denied = [e for e in _audit(audit) if e["outcome"] == "8"]
    assert len(denied) == 1
    assert denied[0]["purposeOfEvent"][0]["coding"][0]["code"] == "HMARKT"
    assert _stored(fhir, patient) == []


# --- 4. no Patient for the MRN ---------------------------------------------------------------


@pytest.mark.hapi
def test_an_mrn_no_patient_has_parks_the_job_without_naming_the_mrn(
    hapi: Hapi, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value = f"NOBODY-{uuid.uuid4()}"
    job = _enqueue(outbox, "hapi", _report(value, tmp_path), value)
    done = _drain(_hapi_sender(outbox, hapi, tmp_path / "audit.ndjson", clock))
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.FAILED)]
    error = done[0].last_error
    assert error is not None and error["type"] == "PatientNotResolved"
    assert "no Patient has" in error["message"]
    assert value not in orjson.dumps(done[0].as_json()).decode()
    assert _drain(_hapi_sender(outbox, hapi, tmp_path / "audit.ndjson", clock)) == []


# --- 5. a server that keeps answering 503 (sekmet) -------------------------------------------


@pytest.fixture
def sekmet_fhir(sekmet: Sekmet) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sekmet.bearer_token}"}
    with httpx.Client(base_url=sekmet.base, headers=headers, timeout=60) as client:
        yield client


def _sekmet_sender(
    outbox: Outbox, sekmet: Sekmet, proxy: FaultProxy, tmp_path: Path, clock: Clock
) -> Sender:
    config = ServerConfig(
        "sekmet",
        proxy.url,
        BearerAuth(sekmet.bearer_token),
        max_entries=8,
        max_attempts=2,
        backoff_base_s=0.01,
        backoff_cap_s=0.02,
    )
    return Sender(outbox, {"sekmet": config}, audit_log=tmp_path / "audit.ndjson", now=clock)


def _observations(fhir: httpx.Client, patient: str) -> list[Resource]:
    page = fhir.get("/Observation", params={"subject": patient, "_count": "500"}).json()
    return [e["resource"] for e in page.get("entry", [])]


def test_a_server_answering_503_gets_the_job_again_when_the_outbox_says_it_is_due(
    sekmet: Sekmet, sekmet_fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, patient = _new_patient(sekmet_fhir)
    job = _enqueue(outbox, "sekmet", _report(value, tmp_path), value)
    with FaultProxy(sekmet.base) as proxy:
        proxy.inject(Fault(FaultKind.UNAVAILABLE), times=4)  # two drains of two attempts
        sender = _sekmet_sender(outbox, sekmet, proxy, tmp_path, clock)
        waits = []
        for attempt in (1, 2):
            done = _drain(sender)
            assert [(s.id, s.state, s.attempts) for s in done] == [
                (job.id, JobState.PENDING, attempt)
            ]
            assert done[0].last_error is not None
            assert done[0].last_error["type"] == "ServerUnavailable"
            assert "503" in done[0].last_error["message"]
            assert value not in orjson.dumps(done[0].last_error).decode()  # searched by MRN
            waits.append(done[0].next_attempt_at - clock.at)
            assert _drain(sender) == []  # not due yet
            clock.at = done[0].next_attempt_at + timedelta(seconds=1)
        assert proxy.pending == 0
        assert timedelta(seconds=15) <= waits[0] <= timedelta(seconds=30)
        assert timedelta(seconds=30) <= waits[1] <= timedelta(seconds=60)
        done = _drain(sender)
        assert [(s.id, s.state, s.last_error) for s in done] == [(job.id, JobState.SENT, None)]
        assert [e.status for e in proxy.exchanges[:4]] == [503] * 4
    assert outbox.retries() == 2
    stored = _observations(sekmet_fhir, patient)
    sent = [i for i in done[0].progress["ids"].values() if i.startswith("Observation/")]
    assert sorted(f"Observation/{r['id']}" for r in stored) == sorted(sent)


# --- 6. one job, one copy; progress only for its own Bundle ----------------------------------


def _bundle_posts(proxy: FaultProxy) -> int:
    """Transactions sent: POSTs to the base, not searches (``_search``, POSTed too)."""
    return sum(1 for e in proxy.exchanges if e.method == "POST" and "_search" not in e.target)


def _pending_with(outbox: Outbox, job: Job, progress: dict[str, Any], clock: Clock) -> None:
    """``job`` with ``progress`` stored by a worker that then gave it back, due now: as a
    worker does that stored progress and lost its server."""
    claimed = outbox.claim("an earlier worker", 60)
    assert claimed is not None and claimed.id == job.id
    outbox.save_progress(claimed, progress)
    outbox.retry_later(claimed, ServerUnavailable("gone", source="test"), clock())


def test_one_job_per_report_one_copy_and_progress_kept_only_for_its_own_bundle(
    sekmet: Sekmet, sekmet_fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, patient = _new_patient(sekmet_fhir)
    bundle = _report(value, tmp_path)
    first = _enqueue(outbox, "sekmet", bundle, value)
    assert _enqueue(outbox, "sekmet", bundle, value).id == first.id
    assert [j.id for j in outbox.list()] == [first.id]
    with FaultProxy(sekmet.base) as proxy:
        sender = _sekmet_sender(outbox, sekmet, proxy, tmp_path, clock)
        (sent,) = _drain(sender)
        chunks = len(Progress.from_json(sent.progress).done)
        assert sent.state is JobState.SENT and _bundle_posts(proxy) == chunks > 1
        stored = _observations(sekmet_fhir, patient)

        stale = _enqueue(outbox, "sekmet", bundle, value)  # a new job: the first one is sent
        made_for_another = {**sent.progress, "bundle": "0" * 64}
        _pending_with(outbox, stale, made_for_another, clock)
        (restarted,) = _drain(sender)
        assert restarted.state is JobState.SENT
        assert _bundle_posts(proxy) == 2 * chunks  # every chunk again, from chunk 0
        assert restarted.progress == sent.progress  # the same decision, the same server ids

        resumed = _enqueue(outbox, "sekmet", bundle, value)
        _pending_with(outbox, resumed, sent.progress, clock)
        (done,) = _drain(sender)
        assert done.state is JobState.SENT
        assert _bundle_posts(proxy) == 2 * chunks  # its own Bundle's progress: nothing to send
    again = _observations(sekmet_fhir, patient)
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in stored)
    identifiers = [r["identifier"][0]["value"] for r in again]
    assert len(identifiers) == len(set(identifiers))


# --- regressions: bugs found while writing these tests -----------------------------------


def test_a_job_retried_after_its_answer_was_lost_leaves_one_provenance(
    sekmet: Sekmet, sekmet_fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, _ = _new_patient(sekmet_fhir)
    job = _enqueue(outbox, "sekmet", _report(value, tmp_path), value)
    with FaultProxy(sekmet.base) as proxy:
        config = ServerConfig(
            "sekmet",
            proxy.url,
            BearerAuth(sekmet.bearer_token),
            max_entries=500,  # one transaction: the Provenance goes with the report
            max_attempts=2,
            backoff_base_s=0.01,
            backoff_cap_s=0.02,
        )
        sender = Sender(outbox, {"sekmet": config}, audit_log=tmp_path / "a.ndjson", now=clock)
        proxy.drop(after_forwarding=True, method="POST").unavailable(method="POST")
        (lost,) = _drain(sender)  # committed, the answer lost, the resend refused
        assert lost.state is JobState.PENDING and proxy.pending == 0
        clock.at = lost.next_attempt_at + timedelta(seconds=1)
        (sent,) = _drain(sender)
    assert sent.state is JobState.SENT
    report = next(i for i in sent.progress["ids"].values() if i.startswith("DiagnosticReport/"))
    page = sekmet_fhir.get("/Provenance", params={"target": report}).json()
    assert len(page.get("entry", [])) == 1, f"job {job.id}: one disclosure, one Provenance"


def test_a_server_asking_for_a_long_pause_gets_it_from_the_outbox(
    sekmet: Sekmet, sekmet_fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, _ = _new_patient(sekmet_fhir)
    _enqueue(outbox, "sekmet", _report(value, tmp_path), value)
    with FaultProxy(sekmet.base) as proxy:
        proxy.unavailable(retry_after="7200")  # beyond the client's 300 s: not waited for inline
        (later,) = _drain(_sekmet_sender(outbox, sekmet, proxy, tmp_path, clock))
    assert later.state is JobState.PENDING
    assert later.next_attempt_at - clock.at >= timedelta(seconds=7200)


@pytest.mark.hapi
def test_the_servers_patient_birth_date_serves_the_minor_rule(
    hapi: Hapi, fhir: httpx.Client, tmp_path: Path, outbox: Outbox, clock: Clock
) -> None:
    value, patient = _new_patient(fhir)
    adult = {**fhir.get(f"/{patient}").json(), "birthDate": BIRTH_DATE}
    assert fhir.put(f"/{patient}", json=adult).status_code == 200
    _opt_in(fhir, patient)
    job = _enqueue(outbox, "hapi", _report(value, tmp_path), value)  # no birth date given
    done = _drain(_hapi_sender(outbox, hapi, tmp_path / "audit.ndjson", clock))
    assert [(s.id, s.state) for s in done] == [(job.id, JobState.SENT)], done[0].last_error
    assert _variant_genes(_stored(fhir, patient)) == WITH_OPT_IN
