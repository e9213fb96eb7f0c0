"""The durable outbox, the same behaviour on SQLite and on a real PostgreSQL server: idempotent
enqueue, claim order and due times, leases and their takeover, progress, the operator's and the
policy's transitions, concurrent claimers, and a worker killed with SIGKILL mid-way."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fhir_servers import free_port
from postgres_server import new_database

from adapter.errors import OptionsError, OutboxError, ServerRejected, ServerUnavailable
from adapter.sync.outbox import (
    DEFAULT_OUTBOX,
    Job,
    JobState,
    JobSummary,
    Outbox,
    open_outbox,
    outbox_exists,
    patient_key,
)

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)
SERVER = "hospital"
ANNA = patient_key("https://hospital.test/mrn", "MRN-0001")
BERT = patient_key("https://hospital.test/mrn", "MRN-0002")
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "Observation.code: bad"}],
}


class Clock:
    """The outbox's time, moved by the test."""

    def __init__(self, start: datetime = T0) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty outbox's URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/outbox.db"
    return new_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(url: str, clock: Clock) -> Iterator[Outbox]:
    with open_outbox(url, now=clock) as box:
        yield box


def report(n: int) -> str:
    return f"https://lab.test/report|R-{n}"


def enqueue(box: Outbox, n: int, patient: str = ANNA, **kw: datetime) -> Job:
    return box.enqueue(SERVER, report(n), patient, f'{{"n":{n}}}'.encode(), **kw)


# --- enqueue -----------------------------------------------------------------------------------


def test_a_report_has_one_open_job_per_server(outbox: Outbox, clock: Clock) -> None:
    first = enqueue(outbox, 1)
    assert (first.state, first.attempts, first.progress, first.bundle) == (
        JobState.PENDING,
        0,
        {},
        b'{"n":1}',
    )
    assert (first.created_at, first.next_attempt_at, first.last_error) == (T0, T0, None)
    again = outbox.enqueue(SERVER, report(1), ANNA, b"another Bundle")
    assert again == first  # the open job, Bundle unchanged
    other_server = outbox.enqueue("registry", report(1), ANNA, b"{}")
    assert other_server.id != first.id
    job = outbox.claim("w1", 30)
    assert job is not None
    assert job.id == first.id
    assert outbox.enqueue(SERVER, report(1), ANNA, b"{}").id == first.id  # sending is open
    outbox.complete(job)
    clock.advance(1)
    after_sent = outbox.enqueue(SERVER, report(1), ANNA, b"amended")
    assert after_sent.id != first.id
    assert (after_sent.bundle, after_sent.created_at) == (b"amended", T0 + timedelta(seconds=1))
    outbox.cancel(after_sent.id, "replaced")
    assert outbox.enqueue(SERVER, report(1), ANNA, b"{}").id not in {first.id, after_sent.id}
    assert outbox.counts()[JobState.PENDING] == 2  # the registry's and the newest


def test_a_corrected_report_replaces_the_bundle_of_its_open_job(
    outbox: Outbox, clock: Clock
) -> None:
    """``replace``: a correction (same report key) arriving before the original was sent
    takes the open job's place, due again; a job a live worker is pushing is not changed
    under it, and one whose worker died is."""
    first = enqueue(outbox, 1)
    job = outbox.claim("w1", 30)
    assert job is not None
    outbox.park(job, ServerRejected("422", status=422, outcome=OUTCOME))
    clock.advance(1)
    corrected = outbox.enqueue(SERVER, report(1), ANNA, b"corrected", replace=True)
    assert (corrected.id, corrected.state, corrected.bundle) == (
        first.id, JobState.PENDING, b"corrected"
    )  # fmt: skip
    assert (corrected.attempts, corrected.last_error, corrected.progress) == (0, None, {})
    assert corrected.next_attempt_at == T0 + timedelta(seconds=1)
    sending = outbox.claim("w2", 30)
    assert sending is not None
    outbox.save_progress(sending, {"done": [0]})
    with pytest.raises(OutboxError, match="being sent right now"):
        outbox.enqueue(SERVER, report(1), ANNA, b"again", replace=True)
    assert outbox.enqueue(SERVER, report(1), ANNA, b"corrected", replace=True).id == first.id
    clock.advance(31)  # w2's lease ran out: its worker is gone
    taken = outbox.enqueue(SERVER, report(1), ANNA, b"again", replace=True)
    assert (taken.state, taken.bundle, taken.lease_owner) == (JobState.PENDING, b"again", None)
    outbox.hold_patient(ANNA, "consent withdrawn")
    held = outbox.enqueue(SERVER, report(1), ANNA, b"third", replace=True)
    assert (held.state, held.bundle, held.reason) == (
        JobState.HELD, b"third", "consent withdrawn"
    )  # fmt: skip


def test_concurrent_enqueues_of_a_report_make_one_job(url: str, clock: Clock) -> None:
    ids: list[str] = []

    def add() -> None:
        with open_outbox(url, now=clock) as own:
            ids.extend(enqueue(own, 1).id for _ in range(5))

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(ids) == 20
    assert len(set(ids)) == 1


def test_patient_key_is_opaque_and_stable() -> None:
    assert patient_key("https://hospital.test/mrn", "MRN-0001") == ANNA
    assert ANNA != BERT
    assert "MRN" not in ANNA
    assert len(ANNA) == 64


# --- claim -------------------------------------------------------------------------------------


def test_claim_takes_the_oldest_due_job(outbox: Outbox, clock: Clock) -> None:
    first = enqueue(outbox, 1)
    clock.advance(1)
    later = enqueue(outbox, 2, not_before=T0 + timedelta(seconds=100))
    clock.advance(1)
    third = enqueue(outbox, 3)
    claimed = [outbox.claim("w1", 30), outbox.claim("w1", 30), outbox.claim("w1", 30)]
    assert [j.id if j else None for j in claimed] == [first.id, third.id, None]
    for job in claimed[:2]:
        assert job is not None
        outbox.complete(job)
    clock.advance(98)  # T0 + 100 s: the deferred job is due
    job = outbox.claim("w2", 30)
    assert job is not None
    assert job.id == later.id
    assert (job.state, job.attempts, job.lease_owner) == (JobState.SENDING, 1, "w2")
    assert job.lease_until == T0 + timedelta(seconds=130)
    assert job.bundle == b'{"n":2}'


def test_an_expired_lease_is_taken_over_and_the_old_worker_stops(
    outbox: Outbox, clock: Clock
) -> None:
    enqueue(outbox, 1)
    mine = outbox.claim("w1", 30)
    assert mine is not None
    clock.advance(29)
    assert outbox.claim("w2", 30) is None  # still leased
    outbox.extend_lease(mine, 30)  # until T0 + 59 s
    clock.advance(29)
    assert outbox.claim("w2", 30) is None
    clock.advance(1)
    theirs = outbox.claim("w2", 30)
    assert theirs is not None
    assert (theirs.id, theirs.attempts, theirs.lease_owner) == (mine.id, 2, "w2")
    for stale in (
        lambda: outbox.save_progress(mine, {"done": 1}),
        lambda: outbox.extend_lease(mine, 30),
        lambda: outbox.complete(mine),
        lambda: outbox.park(mine, ServerRejected("no", status=400)),
        lambda: outbox.retry_later(mine, ServerUnavailable("503"), T0),
    ):
        with pytest.raises(OutboxError, match=f"job {mine.id} is no longer leased to w1"):
            stale()
    done = outbox.complete(theirs)
    assert (done.state, done.lease_owner, done.lease_until) == (JobState.SENT, None, None)


def test_progress_is_kept_for_the_next_owner(url: str, clock: Clock) -> None:
    with open_outbox(url, now=clock) as box:
        enqueue(box, 1)
        job = box.claim("w1", 30)
        assert job is not None
        saved = box.save_progress(job, {"chunks": {"0": ["Observation/a1"]}, "done": 1})
        assert saved.progress == {"chunks": {"0": ["Observation/a1"]}, "done": 1}
        assert not hasattr(saved, "bundle")  # a summary: a worker's updates never reread it
        box.retry_later(job, ServerUnavailable("503 after 5 tries"), T0 + timedelta(seconds=60))
    clock.advance(60)
    with open_outbox(url, now=clock) as reopened:  # a restarted adapter
        again = reopened.claim("w2", 30)
        assert again is not None
        assert again.progress == {"chunks": {"0": ["Observation/a1"]}, "done": 1}
        assert again.attempts == 2


# --- retries, failures and the operator ----------------------------------------------------------


def test_retry_later_and_park_keep_the_error(outbox: Outbox, clock: Clock) -> None:
    enqueue(outbox, 1)
    job = outbox.claim("w1", 30)
    assert job is not None
    waiting = outbox.retry_later(
        job, ServerUnavailable("still 429", source="https://fhir.test"), T0 + MINUTE
    )
    assert (waiting.state, waiting.next_attempt_at) == (JobState.PENDING, T0 + MINUTE)
    assert waiting.last_error is not None
    assert waiting.last_error["type"] == "ServerUnavailable"
    assert waiting.last_error["message"] == "https://fhir.test: still 429"
    assert waiting.last_error["outcome"]["issue"][0]["code"] == "transient"
    assert outbox.retries() == 1
    assert outbox.claim("w1", 30) is None  # not due yet
    clock.advance(60)
    job = outbox.claim("w1", 30)
    assert job is not None
    parked = outbox.park(job, ServerRejected("422 from the server", status=422, outcome=OUTCOME))
    assert parked.state == JobState.FAILED
    assert parked.last_error is not None
    assert (parked.last_error["status"], parked.last_error["outcome"]) == (422, OUTCOME)
    clock.advance(3600)
    assert outbox.claim("w1", 30) is None  # parked jobs wait for an operator
    assert outbox.retries() == 1


def test_an_operator_retries_a_failed_or_cancelled_job(outbox: Outbox, clock: Clock) -> None:
    job = enqueue(outbox, 1)
    with pytest.raises(OptionsError, match="is pending: this applies only to a failed or"):
        outbox.retry(job.id)
    with pytest.raises(OptionsError, match="there is no job nope"):
        outbox.retry("nope")
    sending = outbox.claim("w1", 30)
    assert sending is not None
    outbox.park(sending, ServerRejected("400", status=400, outcome=OUTCOME))
    clock.advance(600)
    retried = outbox.retry(job.id)
    assert (retried.state, retried.next_attempt_at, retried.attempts) == (
        JobState.PENDING,
        T0 + timedelta(seconds=600),
        1,
    )
    assert retried.last_error is not None  # kept until the next outcome
    outbox.cancel(job.id, "wrong patient")
    newer = enqueue(outbox, 1)
    with pytest.raises(OptionsError, match=f"job {newer.id} already sends the same report"):
        outbox.retry(job.id)
    outbox.cancel(newer.id, "sent by hand")
    assert outbox.retry(job.id).state == JobState.PENDING


def test_cancel_takes_the_lease_and_refuses_finished_jobs(outbox: Outbox) -> None:
    enqueue(outbox, 1)
    job = outbox.claim("w1", 30)
    assert job is not None
    cancelled = outbox.cancel(job.id, "the policy denied the send")
    assert (cancelled.state, cancelled.reason, cancelled.lease_owner) == (
        JobState.CANCELLED,
        "the policy denied the send",
        None,
    )
    with pytest.raises(OutboxError, match="no longer leased"):
        outbox.save_progress(job, {"done": 1})
    with pytest.raises(OptionsError, match="is cancelled: this applies only to a pending"):
        outbox.cancel(job.id, "again")
    with pytest.raises(OptionsError, match="there is no job"):
        outbox.cancel("nope", "typo")


def test_hold_and_resume_a_patients_jobs(outbox: Outbox, clock: Clock) -> None:
    failing, sending, waiting = enqueue(outbox, 1), enqueue(outbox, 2), enqueue(outbox, 3)
    other = enqueue(outbox, 4, patient=BERT)
    job = outbox.claim("w1", 30)
    assert job is not None
    assert job.id == failing.id
    outbox.park(job, ServerRejected("409", status=409, outcome=OUTCOME))
    worker_job = outbox.claim("w1", 30)
    assert worker_job is not None
    assert worker_job.id == sending.id
    assert outbox.hold_patient(ANNA, "consent withdrawn") == 3
    held = {j.id: j for j in outbox.list(JobState.HELD)}
    assert set(held) == {waiting.id, failing.id, sending.id}
    assert held[failing.id].held_from == JobState.FAILED
    assert {j.reason for j in held.values()} == {"consent withdrawn"}
    with pytest.raises(OutboxError, match="no longer leased"):
        outbox.save_progress(worker_job, {"done": 1})
    with pytest.raises(OptionsError, match="is held"):
        outbox.retry(failing.id)
    claimed = outbox.claim("w2", 30)
    assert claimed is not None
    assert claimed.id == other.id  # only the other patient's job is sent
    assert outbox.claim("w2", 30) is None
    clock.advance(5)
    assert outbox.resume_patient(ANNA) == 3
    assert outbox.resume_patient(ANNA) == 0
    states = {j.id: j for j in outbox.list()}
    assert states[failing.id].state == JobState.FAILED  # an operator must still look
    assert states[failing.id].last_error is not None
    for resumed in (waiting.id, sending.id):
        assert states[resumed].state == JobState.PENDING
        assert states[resumed].next_attempt_at == T0 + timedelta(seconds=5)
        assert (states[resumed].held_from, states[resumed].reason) == (None, None)
    assert outbox.hold_patient(BERT, "withdrawn") == 1  # its sending job


def test_purge_deletes_only_old_finished_jobs(outbox: Outbox, clock: Clock) -> None:
    sent, failed, cancelled, pending = (enqueue(outbox, n) for n in range(4))
    for parked in (False, True):
        job = outbox.claim("w1", 30)
        assert job is not None
        assert job.id == (failed if parked else sent).id
        if parked:
            outbox.park(job, ServerRejected("400", status=400))
        else:
            outbox.complete(job)
    outbox.cancel(cancelled.id, "operator")
    clock.advance(86400 * 30)
    recent = enqueue(outbox, 9)
    outbox.cancel(recent.id, "operator")
    with pytest.raises(OptionsError, match="pending jobs are still to be sent"):
        outbox.purge([JobState.PENDING, JobState.SENT], clock() - timedelta(days=7))
    assert outbox.purge([JobState.SENT, JobState.CANCELLED], clock() - timedelta(days=7)) == 2
    assert {j.id for j in outbox.list()} == {failed.id, pending.id, recent.id}
    assert outbox.purge([JobState.FAILED], clock()) == 1
    assert {j.id for j in outbox.list()} == {pending.id, recent.id}


def test_counts_list_and_get(outbox: Outbox, clock: Clock) -> None:
    assert outbox.counts() == dict.fromkeys(JobState, 0)
    jobs = [enqueue(outbox, n) for n in range(5)]
    claimed = outbox.claim("w1", 30)
    assert claimed is not None
    outbox.complete(claimed)
    expected = {**dict.fromkeys(JobState, 0), JobState.PENDING: 4, JobState.SENT: 1}
    assert outbox.counts() == expected
    listed = outbox.list(limit=3)
    assert [j.id for j in listed] == [j.id for j in jobs[:3]]
    assert all(type(j) is JobSummary for j in listed)  # no Bundle in a listing
    assert [j.id for j in outbox.list(JobState.SENT)] == [jobs[0].id]
    with pytest.raises(OptionsError, match="limit must be positive"):
        outbox.list(limit=0)
    found = outbox.get(jobs[1].id)
    assert found is not None
    assert found.bundle == jobs[1].bundle
    shown = found.as_json()
    assert "bundle" not in shown
    assert shown["state"] == "pending"
    assert shown["created_at"] == "2026-11-22T12:00:00+00:00"
    assert shown["patient_key"] == ANNA
    assert outbox.get("nope") is None


def test_times_must_be_timezone_aware(url: str) -> None:
    with (
        open_outbox(url, now=lambda: datetime(2026, 1, 1)) as box,
        pytest.raises(ValueError, match="timezone-aware"),
    ):
        box.enqueue(SERVER, report(1), ANNA, b"{}")


# --- concurrency and crashes -------------------------------------------------------------------


def test_concurrent_claimers_never_share_a_job(url: str, clock: Clock) -> None:
    with open_outbox(url, now=clock) as box:
        expected = {enqueue(box, n).id for n in range(60)}
    claims: list[list[str]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def work(mine: list[str]) -> None:
        try:
            with open_outbox(url, now=clock) as own:  # one connection per worker
                while (job := own.claim(f"w{id(mine)}", 30)) is not None:
                    mine.append(job.id)
                    own.complete(job)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    every = [job_id for c in claims for job_id in c]
    assert sorted(every) == sorted(expected)  # each job once, none twice
    with open_outbox(url, now=clock) as box:
        assert box.counts()[JobState.SENT] == 60


CHILD = """
import sys
from adapter.sync.outbox import open_outbox

with open_outbox(sys.argv[1]) as box:
    job = box.claim("doomed", lease_s=30)
    print(job.id, flush=True)
    for done in range(1, 1_000_000):
        ids = [f"Observation/{n}" for n in range(done)][-20:]
        job = box.save_progress(job, {"done": done, "last": ids})
        print(done, flush=True)
"""


def test_a_killed_worker_s_job_is_taken_over_with_its_progress(url: str) -> None:
    with open_outbox(url) as box:
        enqueue(box, 1, not_before=datetime.now(UTC) - timedelta(seconds=1))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    job_id = child.stdout.readline().strip()
    reported = 0
    while reported < 25 and (line := child.stdout.readline()):
        reported = int(line)
    os.kill(child.pid, signal.SIGKILL)  # mid-way: it writes progress without pause
    _, err = child.communicate(timeout=30)
    assert reported == 25, err
    with open_outbox(url) as box:
        assert box.claim("heir", 30) is None  # the dead worker's lease still runs
    with open_outbox(url, now=_after_the_lease) as box:
        job = _claim_soon(box)
        assert (job.id, job.lease_owner, job.attempts) == (job_id, "heir", 2)
        done = job.progress["done"]
        assert done >= 25  # every reported save was durable
        assert job.progress["last"] == [f"Observation/{n}" for n in range(done)][-20:]
        assert box.complete(job).state == JobState.SENT
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()


def _after_the_lease() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=31)


def _claim_soon(box: Outbox) -> Job:
    """The job, once PostgreSQL has ended the killed client's session (it holds a row lock
    until the server sees the socket closed, and SKIP LOCKED passes over a locked row)."""
    deadline = time.monotonic() + 30
    while (job := box.claim("heir", 30)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job is not None
    return job


# --- opening -----------------------------------------------------------------------------------


def test_the_url_scheme_selects_the_backend(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="scheme 'mysql' is not supported"):
        open_outbox("mysql://db/outbox")
    with pytest.raises(OutboxError, match="sqlite:/// and the file's path"):
        open_outbox("sqlite://host/outbox.db")
    path = tmp_path / "new" / "outbox.db"
    with open_outbox(f"sqlite:///{path}") as box:
        assert box.source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # the Bundles are PHI
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    db.close()


def test_regression_the_default_outbox_was_created_at_the_file_system_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///fhir-genomics-outbox.db`` is in the working folder (SQLAlchemy's reading:
    three slashes and a relative path, four for an absolute one), not ``/``."""
    monkeypatch.chdir(tmp_path)
    assert not outbox_exists(DEFAULT_OUTBOX)
    with open_outbox(DEFAULT_OUTBOX) as box:
        assert box.source == "fhir-genomics-outbox.db"
    assert (tmp_path / "fhir-genomics-outbox.db").is_file() and outbox_exists(DEFAULT_OUTBOX)
    assert outbox_exists("postgresql://db.test/outbox")  # a database is there to be migrated


def test_a_file_that_is_not_an_outbox_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "outbox.db"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(OutboxError, match="cannot open the outbox"):
        open_outbox(f"sqlite:///{garbage}")


def _sql(url: str, *statements: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            for s in statements:
                db.execute(s)
        db.close()
    else:
        with psycopg.connect(url, autocommit=True) as pg:
            for s in statements:
                pg.execute(s)


def test_a_newer_schema_is_refused_and_a_failed_migration_changes_nothing(url: str) -> None:
    _sql(url, "CREATE TABLE jobs (unrelated INTEGER)")
    with pytest.raises(OutboxError, match="cannot migrate the outbox from schema version 0 to 1"):
        open_outbox(url)
    _sql(url, "DROP TABLE jobs")
    with open_outbox(url) as box:
        assert box.counts()[JobState.PENDING] == 0
    with open_outbox(url) as box:  # opening again migrates nothing
        enqueue(box, 1)
    _sql(url, "UPDATE schema_version SET version = 3")
    with pytest.raises(OutboxError, match="schema version 3, newer than this adapter's 2"):
        open_outbox(url)


def test_postgres_errors_name_no_password_and_a_dropped_connection_is_reopened(
    postgres_url: str, clock: Clock
) -> None:
    unreachable = f"postgres:s3cret@127.0.0.1:{free_port()}/x?connect_timeout=2"
    with pytest.raises(OutboxError, match="cannot open the outbox") as caught:
        open_outbox(f"postgresql://{unreachable}")
    assert "s3cret" not in str(caught.value)
    assert caught.value.source == f"postgresql://{unreachable.replace(':s3cret', '')}"
    with pytest.raises(OutboxError) as caught:
        open_outbox(f"postgresql://postgres@127.0.0.1:{free_port()}/x?password=s3cret")
    assert "s3cret" not in str(caught.value)
    url = new_database(postgres_url)
    with open_outbox(url, now=clock) as box:
        enqueue(box, 1)
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(OutboxError, match="the outbox database failed"):
            box.counts()  # the call in flight fails; the job stays queued
        assert box.counts()[JobState.PENDING] == 1  # the next one reconnects
