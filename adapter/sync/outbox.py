"""The durable outbox: one job per report Bundle and server, kept in SQLite or PostgreSQL.

Policy decided here:

* **At least once, never lost.** A job is written before anything is sent and leaves the
  outbox only by :meth:`Outbox.purge`. Delivery is at least once; the server keeps one copy
  because every write is conditional on business identifiers (``push.py``), so a resend after
  a crash is harmless.
* **One open job per report and server.** Enqueueing a report (its DiagnosticReport
  identifier, ``system|value``) for a server that already has an open job for it (pending,
  sending, failed or held) returns that job, Bundle unchanged; once the job is finished (sent
  or cancelled) the same report makes a new job. A partial unique index enforces it, so two
  adapters enqueueing at once still make one job.
* **Leases.** :meth:`Outbox.claim` takes the oldest due job: a pending job whose
  ``next_attempt_at`` has come, or a sending job whose lease has expired (its worker died,
  and this is how another worker takes it over). Every later write of the worker names the
  job's ``lease_owner`` and fails with :class:`~adapter.errors.OutboxError` once the job is no
  longer its own (taken over, held or cancelled): that worker must stop sending. Its
  ``progress`` (the chunks done and the server ids they got) is saved after each chunk, so the
  next owner resumes where the last one stopped.
* **Consent.** :meth:`Outbox.hold_patient` parks a patient's pending, sending and failed jobs
  as ``held`` (a sending job's worker loses its lease) and :meth:`Outbox.resume_patient` puts
  them back: a held pending or sending job becomes pending, due at once; a held failed job
  becomes failed again, as an operator must still look at it.
* **No patient identifiers.** A job names its patient by an opaque ``patient_key``
  (:func:`patient_key`), so listings, metrics and logs never show an identifier. The Bundle
  itself (PHI) is in the database: the SQLite file is created readable by its owner only.
* **Storage.** SQLite (the default: embedded, zero setup) in WAL mode with
  ``synchronous=FULL``, so a committed job survives a power cut
  (https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous),
  writers serialised by ``BEGIN IMMEDIATE`` and a busy timeout
  (https://www.sqlite.org/lang_transaction.html). PostgreSQL for several adapters sharing one
  queue: claims use ``FOR UPDATE SKIP LOCKED``, so concurrent workers never take the same job
  and never wait on each other
  (https://www.postgresql.org/docs/15/sql-select.html#SQL-FOR-UPDATE-SHARE).
* **Schema versions.** ``schema_version`` holds the version; opening migrates from whatever
  version the database has (0: empty) in one transaction, and refuses a database written by a
  newer adapter. Version 2 adds the inbound side (:mod:`adapter.sync.inbound`): the
  Subscriptions the adapter registered (:class:`Registration`), the event numbers seen per
  Subscription (:meth:`Outbox.ledger`, an :class:`~adapter.sync.notifications.EventLedger`),
  and the notifications received, each recorded before it is answered and worked off later
  under a lease like a job (:meth:`Outbox.record_notification`). A rest-hook delivery of a
  resource version already recorded is a duplicate and is not recorded again.

Calls block; async code runs them in a thread (``asyncio.to_thread``). One :class:`Outbox` is
safe to share between threads. Time comes from the injected ``now`` clock (timezone-aware).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import socket
import sqlite3
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from adapter.errors import AdapterError, OptionsError, OutboxError, ServerRejected

from .notifications import EventLedger, Subscribed, Watermark

__all__ = [
    "InboundNotification",
    "Job",
    "JobState",
    "JobSummary",
    "Outbox",
    "Registration",
    "open_outbox",
    "outbox_exists",
    "patient_key",
]

Clock = Callable[[], datetime]
Record = Mapping[str, Any]
#: where the CLI and the service find the outbox unless told
OUTBOX_ENV = "FHIR_GENOMICS_OUTBOX"
DEFAULT_OUTBOX = "sqlite:///fhir-genomics-outbox.db"

#: seconds to wait for SQLite's write lock, or for a PostgreSQL connection
BUSY_TIMEOUT_S = 30.0


class JobState(StrEnum):
    """Where a job is in its life."""

    PENDING = "pending"  # waiting for next_attempt_at
    SENDING = "sending"  # leased to a worker
    SENT = "sent"  # the server took every chunk
    FAILED = "failed"  # parked: the server refused it; an operator must look
    CANCELLED = "cancelled"  # never to be sent (the policy denied it, or an operator)
    HELD = "held"  # consent withdrawn; resumed when it is given again


#: the states :meth:`Outbox.purge` may delete: the job is finished or waits for an operator
PURGEABLE = frozenset({JobState.SENT, JobState.CANCELLED, JobState.FAILED})


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A job without its Bundle: what listings, metrics and a worker's updates return."""

    id: str
    server: str
    report_key: str
    patient_key: str
    state: JobState
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    progress: dict[str, Any]
    last_error: dict[str, Any] | None  # type, message, status, OperationOutcome
    reason: str | None  # why it was held or cancelled
    held_from: JobState | None
    created_at: datetime
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The job as JSON for operators (CLI, ``GET /v1/jobs/{id}``): never the Bundle,
        which is PHI, even for a :class:`Job`."""
        shown: dict[str, Any] = {}
        for field in fields(JobSummary):
            value = getattr(self, field.name)
            shown[field.name] = value.isoformat() if isinstance(value, datetime) else value
        return shown


@dataclass(frozen=True, slots=True)
class Job(JobSummary):
    """A job with the report Bundle to send (serialised FHIR JSON) and the disclosure
    request it is sent under (purpose, recipient, Consents...: PHI too, never listed)."""

    bundle: bytes
    request: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Registration:
    """A Subscription the adapter registered on a server, and what its notifications become:
    jobs to ``server`` (the configured name) under ``request`` (see
    :func:`adapter.sync.worker.send_request`). ``since`` is the server's time up to which a
    rest-hook ping's search has looked."""

    key: str  # the opaque last segment of the notification endpoint
    server: str
    base_url: str
    subscription_id: str
    criteria: str  # the R4 criteria, or the topic's canonical URL
    endpoint: str
    request: dict[str, Any]
    searches: tuple[str, ...] = ()
    topic: str | None = None
    supports_events: bool = False
    since: datetime | None = None

    @property
    def subscribed(self) -> Subscribed:
        """The Subscription as :mod:`adapter.sync.notifications` receives for it."""
        return Subscribed(
            self.base_url, self.subscription_id, self.searches, self.topic, self.supports_events
        )


@dataclass(frozen=True, slots=True)
class InboundNotification:
    """A notification as received, leased to the worker that acts on it. ``work`` is None
    until it has been sorted (its events entered in the ledger and its triggers listed)."""

    id: str
    subscription: str  # Registration.key
    body: bytes
    work: dict[str, Any] | None
    attempts: int
    lease_owner: str | None


def worker_id() -> str:
    """A lease owner's name: the host and process (for operators), and a random part (two
    workers in one process never share a lease)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def patient_key(system: str, value: str) -> str:
    """The outbox's name for a patient: the SHA-256 of the identifier, so that nothing the
    outbox shows is the identifier itself."""
    return hashlib.sha256(f"{system}|{value}".encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    """Times are compared across processes and hosts: a naive one is a bug."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the outbox needs timezone-aware times, got {value.isoformat()}")
    return value


def _lease_until(now: datetime, lease_s: float) -> datetime:
    if lease_s <= 0:
        raise ValueError(f"a lease must last more than 0 s, not {lease_s}")
    return now + timedelta(seconds=lease_s)


def _error_record(error: AdapterError) -> dict[str, Any]:
    """What an operator needs of a failure: the server's own OperationOutcome if it sent one."""
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    outcome = error.to_operation_outcome()
    if isinstance(error, ServerRejected):
        record["status"] = error.status
        outcome = error.outcome or outcome
    record["outcome"] = outcome
    return record


# --- storage -----------------------------------------------------------------------------------


class _Cursor(Protocol):
    """The DB-API cursor subset both backends share; rows are mappings by column name."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


#: version 1; types are named by role and mapped per backend
_SCHEMA_V1 = (
    """CREATE TABLE jobs (
        seq {seq},
        id TEXT NOT NULL UNIQUE,
        server TEXT NOT NULL,
        report_key TEXT NOT NULL,
        patient_key TEXT NOT NULL,
        bundle {bytes} NOT NULL,
        request {json},
        state TEXT NOT NULL CHECK (state IN
            ('pending', 'sending', 'sent', 'failed', 'cancelled', 'held')),
        held_from TEXT CHECK (held_from IN ('pending', 'sending', 'failed')),
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at {instant} NOT NULL,
        lease_owner TEXT,
        lease_until {instant},
        progress {json} NOT NULL,
        last_error {json},
        created_at {instant} NOT NULL,
        updated_at {instant} NOT NULL
    )""",
    """CREATE UNIQUE INDEX jobs_open_report ON jobs (server, report_key)
        WHERE state IN ('pending', 'sending', 'failed', 'held')""",
    """CREATE INDEX jobs_queue ON jobs (created_at, seq)
        WHERE state IN ('pending', 'sending')""",
    "CREATE INDEX jobs_patient ON jobs (patient_key)",
    "CREATE INDEX jobs_state_updated ON jobs (state, updated_at)",
    """CREATE VIEW job_summaries AS SELECT seq, id, server, report_key, patient_key, state,
        held_from, reason, attempts, next_attempt_at, lease_owner, lease_until, progress,
        last_error, created_at, updated_at FROM jobs""",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO counters (name, value) VALUES ('retries', 0)",
)

_CLAIM = """UPDATE jobs SET state = 'sending', lease_owner = ?, lease_until = ?,
        attempts = attempts + 1, updated_at = ?
    WHERE id = (SELECT id FROM jobs
        WHERE (state = 'pending' AND next_attempt_at <= ?)
            OR (state = 'sending' AND lease_until <= ?)
        ORDER BY created_at, seq LIMIT 1)
    RETURNING id"""


#: version 2: the inbound side. Booleans are integers (0/1) on both backends.
_SCHEMA_V2 = (
    """CREATE TABLE subscriptions (
        key TEXT PRIMARY KEY,
        server TEXT NOT NULL,
        base_url TEXT NOT NULL,
        subscription_id TEXT NOT NULL,
        criteria TEXT NOT NULL,
        topic TEXT,
        searches {json} NOT NULL,
        supports_events INTEGER NOT NULL DEFAULT 0,
        endpoint TEXT NOT NULL,
        request {json} NOT NULL,
        since {instant},
        created_at {instant} NOT NULL,
        updated_at {instant} NOT NULL,
        UNIQUE (server, subscription_id)
    )""",
    """CREATE TABLE event_marks (
        subscription TEXT PRIMARY KEY,
        number BIGINT NOT NULL,
        at {instant}
    )""",
    """CREATE TABLE events_above (
        subscription TEXT NOT NULL,
        number BIGINT NOT NULL,
        at {instant},
        PRIMARY KEY (subscription, number)
    )""",
    """CREATE TABLE notifications (
        seq {seq},
        id TEXT NOT NULL UNIQUE,
        subscription TEXT NOT NULL REFERENCES subscriptions (key),
        body {bytes} NOT NULL,
        delivery TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending', 'working', 'done', 'failed')),
        work {json},
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at {instant} NOT NULL,
        lease_owner TEXT,
        lease_until {instant},
        last_error {json},
        received_at {instant} NOT NULL,
        updated_at {instant} NOT NULL
    )""",
    "CREATE UNIQUE INDEX notifications_delivery ON notifications (subscription, delivery)",
    """CREATE INDEX notifications_queue ON notifications (received_at, seq)
        WHERE state IN ('pending', 'working')""",
)

_CLAIM_NOTIFICATION = """UPDATE notifications SET state = 'working', lease_owner = ?,
        lease_until = ?, attempts = attempts + 1, updated_at = ?
    WHERE id = (SELECT id FROM notifications
        WHERE (state = 'pending' AND due_at <= ?) OR (state = 'working' AND lease_until <= ?)
        ORDER BY received_at, seq LIMIT 1)
    RETURNING id"""


class _Store(ABC):
    """A backend: its connection, transactions, encodings and dialect."""

    #: the database, named without a password, for error messages
    source: str
    #: the driver's exceptions, reported as OutboxError
    errors: tuple[type[Exception], ...]
    migrations: tuple[tuple[str, ...], ...]
    claim_sql: str
    claim_notification_sql: str
    #: run first in the migration transaction, so two adapters never migrate at once
    schema_lock_sql: str | None

    @abstractmethod
    def transaction(self, write: bool) -> AbstractContextManager[_Cursor]:
        """A cursor in a transaction, committed when the block ends, rolled back on error."""

    @abstractmethod
    def instant(self, value: datetime) -> Any: ...

    @abstractmethod
    def from_instant(self, value: Any) -> datetime: ...

    @abstractmethod
    def json(self, value: dict[str, Any] | None) -> Any: ...

    @abstractmethod
    def from_json(self, value: Any) -> Any: ...

    @abstractmethod
    def close(self) -> None: ...


class _SqliteStore(_Store):
    """One connection to a WAL database file."""

    errors = (sqlite3.Error,)
    migrations = tuple(
        tuple(
            s.format(seq="INTEGER PRIMARY KEY", bytes="BLOB", instant="TEXT", json="TEXT")
            for s in schema
        )
        for schema in (_SCHEMA_V1, _SCHEMA_V2)
    )
    claim_sql = _CLAIM
    claim_notification_sql = _CLAIM_NOTIFICATION
    schema_lock_sql = None  # BEGIN IMMEDIATE already excludes every other writer
    #: fixed width in UTC, so text order is time order
    INSTANT = "%Y-%m-%dT%H:%M:%S.%fZ"

    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.source = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # the Bundles are PHI
        self._db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            self._db.row_factory = sqlite3.Row
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise OutboxError(
                    f"SQLite cannot use WAL mode here (it answered {mode!r}): put the outbox "
                    "on a local file system",
                    source=self.source,
                )
            self._db.execute("PRAGMA synchronous=FULL")
        except BaseException:
            self._db.close()
            raise

    @contextmanager
    def transaction(self, write: bool) -> Iterator[_Cursor]:
        cursor = self._db.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        finally:
            cursor.close()

    def instant(self, value: datetime) -> str:
        return _aware(value).astimezone(UTC).strftime(self.INSTANT)

    def from_instant(self, value: Any) -> datetime:
        return datetime.strptime(value, self.INSTANT).replace(tzinfo=UTC)

    def json(self, value: dict[str, Any] | None) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def from_json(self, value: Any) -> Any:
        return None if value is None else json.loads(value)

    def close(self) -> None:
        self._db.close()


class _PgCursor:
    """A psycopg cursor that takes the outbox's ``?`` placeholders."""

    def __init__(self, cursor: psycopg.Cursor[DictRow]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> object:
        return self._cursor.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _PostgresStore(_Store):
    """One connection, reopened when the server dropped it."""

    errors = (psycopg.Error,)
    migrations = tuple(
        tuple(
            s.format(
                seq="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                bytes="BYTEA",
                instant="TIMESTAMPTZ",
                json="JSONB",
            )
            for s in schema
        )
        for schema in (_SCHEMA_V1, _SCHEMA_V2)
    )
    claim_sql = _CLAIM.replace("LIMIT 1", "LIMIT 1 FOR UPDATE SKIP LOCKED")
    claim_notification_sql = _CLAIM_NOTIFICATION.replace(
        "LIMIT 1", "LIMIT 1 FOR UPDATE SKIP LOCKED"
    )
    schema_lock_sql = "SELECT pg_advisory_xact_lock(hashtext('fhir-genomics outbox schema'))"

    def __init__(self, url: str, busy_timeout_s: float) -> None:
        self.source = _without_password(url)
        timeout = conninfo_to_dict(url).get("connect_timeout", max(1, round(busy_timeout_s)))
        self._conninfo = make_conninfo(url, connect_timeout=timeout)
        self._db = self._connect()

    def _connect(self) -> psycopg.Connection[DictRow]:
        return psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)

    @contextmanager
    def transaction(self, write: bool) -> Iterator[_Cursor]:
        if self._db.closed or self._db.broken:
            self._db.close()
            self._db = self._connect()
        with self._db.transaction(), self._db.cursor() as cursor:
            yield _PgCursor(cursor)

    def instant(self, value: datetime) -> datetime:
        return _aware(value)

    def from_instant(self, value: Any) -> datetime:
        instant: datetime = value.astimezone(UTC)
        return instant

    def json(self, value: dict[str, Any] | None) -> Jsonb | None:
        return None if value is None else Jsonb(value)

    def from_json(self, value: Any) -> Any:
        return value

    def close(self) -> None:
        self._db.close()


def _without_password(url: str) -> str:
    """``url`` fit for a message: no password, in the authority nor in the query."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}@" if parts.username else ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
    return urlunsplit(parts._replace(netloc=user + netloc, query=query))


# --- the outbox --------------------------------------------------------------------------------


class Outbox:
    """The job store: the same operations on either backend."""

    def __init__(self, store: _Store, now: Clock = _utcnow) -> None:
        self._store = store
        self._now = now
        self._lock = threading.Lock()
        try:
            self._migrate()
        except BaseException:
            store.close()
            raise

    @property
    def source(self) -> str:
        """The database, without its password."""
        return self._store.source

    def close(self) -> None:
        with self._lock:
            self._store.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[_Cursor]:
        with self._lock:
            try:
                with self._store.transaction(write) as cursor:
                    yield cursor
            except self._store.errors as e:
                raise OutboxError(f"the outbox database failed: {e}", source=self.source) from e

    def _clock(self) -> datetime:
        return _aware(self._now())

    # --- schema --------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._transaction() as cursor:
            if self._store.schema_lock_sql:
                cursor.execute(self._store.schema_lock_sql)
            cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cursor.execute("SELECT version FROM schema_version")
            row = cursor.fetchone()
            if row is None:
                cursor.execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0 if row is None else int(row["version"])
            self._upgrade(cursor, version)

    def _upgrade(self, cursor: _Cursor, version: int) -> None:
        migrations = self._store.migrations
        if version > len(migrations):
            raise OutboxError(
                f"the outbox has schema version {version}, newer than this adapter's "
                f"{len(migrations)}: upgrade the adapter",
                source=self.source,
            )
        for target, statements in enumerate(migrations[version:], start=version + 1):
            try:
                for statement in statements:
                    cursor.execute(statement)
                cursor.execute("UPDATE schema_version SET version = ?", (target,))
            except self._store.errors as e:
                raise OutboxError(
                    f"cannot migrate the outbox from schema version {version} to {target}: {e}",
                    source=self.source,
                ) from e

    # --- rows ----------------------------------------------------------------------------------

    def _fields(self, row: Record) -> dict[str, Any]:
        store = self._store
        lease_until, held_from = row["lease_until"], row["held_from"]
        return {
            "id": row["id"],
            "server": row["server"],
            "report_key": row["report_key"],
            "patient_key": row["patient_key"],
            "state": JobState(row["state"]),
            "attempts": int(row["attempts"]),
            "next_attempt_at": store.from_instant(row["next_attempt_at"]),
            "lease_owner": row["lease_owner"],
            "lease_until": None if lease_until is None else store.from_instant(lease_until),
            "progress": store.from_json(row["progress"]),
            "last_error": store.from_json(row["last_error"]),
            "reason": row["reason"],
            "held_from": None if held_from is None else JobState(held_from),
            "created_at": store.from_instant(row["created_at"]),
            "updated_at": store.from_instant(row["updated_at"]),
        }

    def _job(self, row: Record) -> Job:
        request = self._store.from_json(row["request"]) or {}
        return Job(**self._fields(row), bundle=bytes(row["bundle"]), request=request)

    def _summary(self, row: Record) -> JobSummary:
        return JobSummary(**self._fields(row))

    def _read_job(self, cursor: _Cursor, job_id: str) -> Job | None:
        cursor.execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
        row = cursor.fetchone()
        return None if row is None else self._job(row)

    def _read_summary(self, cursor: _Cursor, job_id: str) -> JobSummary | None:
        cursor.execute("SELECT * FROM job_summaries WHERE id = ?", (job_id,))
        row = cursor.fetchone()
        return None if row is None else self._summary(row)

    # --- producers -----------------------------------------------------------------------------

    def enqueue(
        self,
        server: str,
        report_key: str,
        patient_key: str,
        bundle: bytes,
        *,
        request: dict[str, Any] | None = None,
        not_before: datetime | None = None,
        replace: bool = False,
    ) -> Job:
        """The open job sending this report to this server: a new one, due at ``not_before``
        (default now), unless one is open already. ``patient_key`` must be opaque
        (:func:`patient_key`), never the identifier. With ``replace`` (a corrected report),
        an open job of another Bundle takes this one and is due again (a held job stays
        held); one a live worker is sending right now is an :class:`OutboxError`, to be
        retried: its push cannot take a new Bundle halfway."""
        now = self._clock()
        store = self._store
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO jobs (id, server, report_key, patient_key, bundle, request, state,
                    next_attempt_at, progress, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                (
                    str(uuid.uuid4()),
                    server,
                    report_key,
                    patient_key,
                    bundle,
                    store.json(request or {}),
                    store.instant(not_before or now),
                    store.json({}),
                    store.instant(now),
                    store.instant(now),
                ),
            )
            cursor.execute(
                """SELECT * FROM jobs WHERE server = ? AND report_key = ?
                AND state IN ('pending', 'sending', 'failed', 'held')""",
                (server, report_key),
            )
            job = self._job(cursor.fetchone())
            if not replace or job.bundle == bundle:
                return job
            if job.state is JobState.SENDING and job.lease_until and job.lease_until > now:
                raise OutboxError(
                    "an earlier version of this report is being sent right now: send the "
                    "correction again shortly",
                    source=self.source,
                )
            cursor.execute(
                """UPDATE jobs SET bundle = ?, request = ?, progress = ?, attempts = 0,
                    state = CASE WHEN state = 'held' THEN 'held' ELSE 'pending' END,
                    held_from = CASE WHEN state = 'held' THEN 'pending' ELSE NULL END,
                    lease_owner = NULL, lease_until = NULL, last_error = NULL,
                    reason = CASE WHEN state = 'held' THEN reason ELSE NULL END,
                    next_attempt_at = ?, updated_at = ?
                WHERE id = ?""",
                (
                    bundle,
                    store.json(request or {}),
                    store.json({}),
                    store.instant(not_before or now),
                    store.instant(now),
                    job.id,
                ),
            )
            found = self._read_job(cursor, job.id)
            if found is None:  # updated in this very transaction: the store is broken
                raise OutboxError("the replaced job cannot be read back", source=self.source)
            return found

    # --- workers -------------------------------------------------------------------------------

    def claim(self, owner: str, lease_s: float) -> Job | None:
        """The oldest due job, leased to ``owner`` for ``lease_s`` seconds: a pending job whose
        time has come, or a sending job whose worker let its lease expire. None when no job is
        due. ``owner`` must be unique per worker (host, process and a random part)."""
        now = self._clock()
        store = self._store
        with self._transaction() as cursor:
            cursor.execute(
                store.claim_sql,
                (
                    owner,
                    store.instant(_lease_until(now, lease_s)),
                    store.instant(now),
                    store.instant(now),
                    store.instant(now),
                ),
            )
            row = cursor.fetchone()
            return None if row is None else self._read_job(cursor, row["id"])

    def _leased(
        self, job: JobSummary, sql: str, params: Sequence[Any], *, retry: bool = False
    ) -> JobSummary:
        """Runs ``sql`` (ending ``WHERE id = ? AND state = 'sending' AND lease_owner = ?``)
        only while ``job`` is still leased to the worker that holds it; a ``retry`` is
        counted for the metrics."""
        with self._transaction() as cursor:
            cursor.execute(sql, (*params, job.id, job.lease_owner))
            if cursor.rowcount != 1:
                raise OutboxError(
                    f"job {job.id} is no longer leased to {job.lease_owner} (taken over after "
                    "its lease expired, held or cancelled): stop working on it",
                    source=self.source,
                )
            if retry:
                cursor.execute("UPDATE counters SET value = value + 1 WHERE name = 'retries'")
            cursor.execute("SELECT * FROM job_summaries WHERE id = ?", (job.id,))
            return self._summary(cursor.fetchone())

    def extend_lease(self, job: JobSummary, lease_s: float) -> JobSummary:
        """The lease renewed to ``lease_s`` seconds from now, for a send that takes long."""
        now = self._clock()
        until = self._store.instant(_lease_until(now, lease_s))
        return self._leased(
            job,
            """UPDATE jobs SET lease_until = ?, updated_at = ?
            WHERE id = ? AND state = 'sending' AND lease_owner = ?""",
            (until, self._store.instant(now)),
        )

    def save_progress(self, job: JobSummary, progress: dict[str, Any]) -> JobSummary:
        """``progress`` (JSON: chunks done, the ids the server gave) made durable, so the next
        owner of the job resumes after the last chunk saved."""
        return self._leased(
            job,
            """UPDATE jobs SET progress = ?, updated_at = ?
            WHERE id = ? AND state = 'sending' AND lease_owner = ?""",
            (self._store.json(progress), self._store.instant(self._clock())),
        )

    def complete(self, job: JobSummary) -> JobSummary:
        """Sent: the server took every chunk. The progress (its ids) is kept."""
        return self._leased(
            job,
            """UPDATE jobs SET state = 'sent', lease_owner = NULL, lease_until = NULL,
                last_error = NULL, updated_at = ?
            WHERE id = ? AND state = 'sending' AND lease_owner = ?""",
            (self._store.instant(self._clock()),),
        )

    def retry_later(self, job: JobSummary, error: AdapterError, at: datetime) -> JobSummary:
        """Pending again, due at ``at``, after a failure a retry may fix (429, 5xx, no
        connection); ``error`` is kept for operators."""
        store = self._store
        return self._leased(
            job,
            """UPDATE jobs SET state = 'pending', next_attempt_at = ?, last_error = ?,
                lease_owner = NULL, lease_until = NULL, updated_at = ?
            WHERE id = ? AND state = 'sending' AND lease_owner = ?""",
            (store.instant(at), store.json(_error_record(error)), store.instant(self._clock())),
            retry=True,
        )

    def park(self, job: JobSummary, error: AdapterError) -> JobSummary:
        """Failed: the server refused the job (a 4xx a retry cannot fix) and an operator must
        look; the server's OperationOutcome is kept."""
        store = self._store
        return self._leased(
            job,
            """UPDATE jobs SET state = 'failed', last_error = ?, lease_owner = NULL,
                lease_until = NULL, updated_at = ?
            WHERE id = ? AND state = 'sending' AND lease_owner = ?""",
            (store.json(_error_record(error)), store.instant(self._clock())),
        )

    # --- policy and operators ------------------------------------------------------------------

    def cancel(self, job_id: str, reason: str) -> JobSummary:
        """Never to be sent (the policy denied it, or an operator): any open job. A worker
        sending it loses its lease."""
        with self._transaction() as cursor:
            cursor.execute(
                """UPDATE jobs SET state = 'cancelled', reason = ?, held_from = NULL,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
                WHERE id = ? AND state IN ('pending', 'sending', 'failed', 'held')""",
                (reason, self._store.instant(self._clock()), job_id),
            )
            updated = cursor.rowcount
            return self._changed(cursor, job_id, updated, "pending, sending, failed or held")

    def retry(self, job_id: str) -> JobSummary:
        """A failed or cancelled job pending again, due now (an operator's decision), unless
        the report has another open job for the same server."""
        with self._transaction() as cursor:
            cursor.execute(
                """UPDATE jobs SET state = 'pending', next_attempt_at = ?, reason = NULL,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
                WHERE id = ? AND state IN ('failed', 'cancelled') AND NOT EXISTS (
                    SELECT 1 FROM jobs AS other WHERE other.server = jobs.server
                    AND other.report_key = jobs.report_key AND other.id <> jobs.id
                    AND other.state IN ('pending', 'sending', 'failed', 'held'))""",
                (self._store.instant(self._clock()),) * 2 + (job_id,),
            )
            updated = cursor.rowcount
            if updated == 0:
                self._refuse_retry(cursor, job_id)
            return self._changed(cursor, job_id, updated, "failed or cancelled")

    def _refuse_retry(self, cursor: _Cursor, job_id: str) -> None:
        """Raises when a retryable job has an open sibling; other refusals are _changed's."""
        cursor.execute(
            """SELECT other.id FROM jobs AS job JOIN jobs AS other
                ON other.server = job.server AND other.report_key = job.report_key
            WHERE job.id = ? AND job.state IN ('failed', 'cancelled') AND other.id <> job.id
                AND other.state IN ('pending', 'sending', 'failed', 'held')""",
            (job_id,),
        )
        row = cursor.fetchone()
        if row is not None:
            raise OptionsError(
                f"job {job_id} cannot be retried: job {row['id']} already sends the same "
                "report to the same server",
                field="job_id",
            )

    def _changed(self, cursor: _Cursor, job_id: str, updated: int, allowed: str) -> JobSummary:
        """The job after an operator's update, or why the update (``updated`` rows) did not
        apply to it."""
        summary = self._read_summary(cursor, job_id)
        if summary is None:
            raise OptionsError(f"there is no job {job_id} in the outbox", field="job_id")
        if updated == 0:
            raise OptionsError(
                f"job {job_id} is {summary.state}: this applies only to a {allowed} job",
                field="job_id",
            )
        return summary

    def hold_patient(self, patient_key: str, reason: str) -> int:
        """The patient's pending, sending and failed jobs held (consent withdrawn): nothing
        of theirs is sent until :meth:`resume_patient`. How many were held."""
        with self._transaction() as cursor:
            cursor.execute(
                """UPDATE jobs SET held_from = state, state = 'held', reason = ?,
                    lease_owner = NULL, lease_until = NULL, updated_at = ?
                WHERE patient_key = ? AND state IN ('pending', 'sending', 'failed')""",
                (reason, self._store.instant(self._clock()), patient_key),
            )
            return cursor.rowcount

    def resume_patient(self, patient_key: str) -> int:
        """The patient's held jobs back: pending (due now), or failed if they were. How many."""
        now = self._store.instant(self._clock())
        with self._transaction() as cursor:
            cursor.execute(
                """UPDATE jobs SET state = CASE held_from WHEN 'failed' THEN 'failed'
                        ELSE 'pending' END,
                    held_from = NULL, reason = NULL, next_attempt_at = ?, updated_at = ?
                WHERE patient_key = ? AND state = 'held'""",
                (now, now, patient_key),
            )
            return cursor.rowcount

    def purge(self, states: Iterable[JobState], older_than: datetime) -> int:
        """Jobs in ``states`` (sent, cancelled or failed) last changed before ``older_than``,
        deleted. How many."""
        chosen = frozenset(JobState(s) for s in states)
        if not chosen <= PURGEABLE:
            refused = ", ".join(sorted(chosen - PURGEABLE))
            raise OptionsError(
                f"{refused} jobs are still to be sent and cannot be purged: cancel them first",
                field="state",
            )
        before = self._store.instant(older_than)
        with self._transaction() as cursor:
            deleted = 0
            for state in sorted(chosen):
                cursor.execute(
                    "DELETE FROM jobs WHERE state = ? AND updated_at < ?", (state.value, before)
                )
                deleted += cursor.rowcount
            return deleted

    # --- reading -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._transaction(write=False) as cursor:
            return self._read_job(cursor, job_id)

    def list(self, state: JobState | None = None, limit: int = 100) -> builtins.list[JobSummary]:
        """Up to ``limit`` jobs, oldest first, in ``state`` if given (without their Bundles)."""
        if limit <= 0:
            raise OptionsError(f"the limit must be positive, not {limit}", field="limit")
        with self._transaction(write=False) as cursor:
            if state is None:
                cursor.execute(
                    "SELECT * FROM job_summaries ORDER BY created_at, seq LIMIT ?", (limit,)
                )
            else:
                cursor.execute(
                    "SELECT * FROM job_summaries WHERE state = ? ORDER BY created_at, seq LIMIT ?",
                    (JobState(state).value, limit),
                )
            return [self._summary(row) for row in cursor.fetchall()]

    def counts(self) -> dict[JobState, int]:
        """Jobs by state, every state present: the ``jobs`` gauge of the metrics."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            found = {JobState(row["state"]): int(row["n"]) for row in cursor.fetchall()}
        return {state: found.get(state, 0) for state in JobState}

    def retries(self) -> int:
        """How many times a job was put back for a later attempt, ever: a metrics counter."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT value FROM counters WHERE name = 'retries'")
            return int(cursor.fetchone()["value"])

    def patient_jobs(self, patient_key: str, server: str) -> builtins.list[Job]:
        """Every job of the patient for ``server``, oldest first, with Bundles: what a Consent
        change is decided again for."""
        with self._transaction(write=False) as cursor:
            cursor.execute(
                """SELECT * FROM jobs WHERE patient_key = ? AND server = ?
                ORDER BY created_at, seq""",
                (patient_key, server),
            )
            return [self._job(row) for row in cursor.fetchall()]

    # --- inbound: registrations --------------------------------------------------------------

    def register(self, registration: Registration) -> Registration:
        """``registration`` stored (replacing the one of the same key; its ``since`` kept)."""
        now = self._store.instant(self._clock())
        store, r = self._store, registration
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO subscriptions (key, server, base_url, subscription_id, criteria,
                    topic, searches, supports_events, endpoint, request, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (key) DO UPDATE SET server = excluded.server,
                    base_url = excluded.base_url, subscription_id = excluded.subscription_id,
                    criteria = excluded.criteria, topic = excluded.topic,
                    searches = excluded.searches, supports_events = excluded.supports_events,
                    endpoint = excluded.endpoint, request = excluded.request,
                    updated_at = excluded.updated_at""",
                (
                    r.key, r.server, r.base_url, r.subscription_id, r.criteria, r.topic,
                    store.json({"searches": list(r.searches)}), int(r.supports_events),
                    r.endpoint, store.json(r.request), now, now,
                ),
            )  # fmt: skip
            found = self._read_registration(cursor, r.key)
        assert found is not None  # noqa: S101 - written in this transaction
        return found

    def registration(self, key: str) -> Registration | None:
        with self._transaction(write=False) as cursor:
            return self._read_registration(cursor, key)

    def registrations(self, server: str | None = None) -> builtins.list[Registration]:
        """The registered Subscriptions, of ``server`` if given."""
        with self._transaction(write=False) as cursor:
            if server is None:
                cursor.execute("SELECT * FROM subscriptions ORDER BY created_at, key")
            else:
                cursor.execute(
                    "SELECT * FROM subscriptions WHERE server = ? ORDER BY created_at, key",
                    (server,),
                )
            return [self._registration(row) for row in cursor.fetchall()]

    def advance_since(self, key: str, since: datetime) -> None:
        """A ping's search has seen the server's changes up to ``since``: never moved back."""
        with self._transaction() as cursor:
            cursor.execute("SELECT since FROM subscriptions WHERE key = ?", (key,))
            row = cursor.fetchone()
            if row is None:
                return
            old = row["since"]
            if old is None or self._store.from_instant(old) < since:
                cursor.execute(
                    "UPDATE subscriptions SET since = ? WHERE key = ?",
                    (self._store.instant(since), key),
                )

    def _read_registration(self, cursor: _Cursor, key: str) -> Registration | None:
        cursor.execute("SELECT * FROM subscriptions WHERE key = ?", (key,))
        row = cursor.fetchone()
        return None if row is None else self._registration(row)

    def _registration(self, row: Record) -> Registration:
        store = self._store
        since = row["since"]
        return Registration(
            key=row["key"],
            server=row["server"],
            base_url=row["base_url"],
            subscription_id=row["subscription_id"],
            criteria=row["criteria"],
            endpoint=row["endpoint"],
            request=store.from_json(row["request"]),
            searches=tuple(store.from_json(row["searches"])["searches"]),
            topic=row["topic"],
            supports_events=bool(row["supports_events"]),
            since=None if since is None else store.from_instant(since),
        )

    # --- inbound: the event ledger -----------------------------------------------------------

    def ledger(self) -> EventLedger:
        """The event numbers seen, each call its own transaction."""
        return _DurableLedger(self)

    # --- inbound: notifications --------------------------------------------------------------

    def record_notification(
        self, subscription: str, body: bytes, delivery: str | None = None
    ) -> str | None:
        """The notification made durable, due now; its id. None when ``delivery`` (a
        resource version, ``Type/id/_history/vid``) was recorded for this Subscription
        before: a duplicate delivery."""
        now = self._store.instant(self._clock())
        note_id = str(uuid.uuid4())
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO notifications (id, subscription, body, delivery, state, due_at,
                    received_at, updated_at)
                VALUES (?, ?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT DO NOTHING""",
                (note_id, subscription, body, delivery, now, now, now),
            )
            return note_id if cursor.rowcount == 1 else None

    def claim_notification(self, owner: str, lease_s: float) -> InboundNotification | None:
        """The oldest due notification, leased to ``owner``, as :meth:`claim` does for jobs."""
        now = self._clock()
        store = self._store
        stamp = store.instant(now)
        until = store.instant(_lease_until(now, lease_s))
        with self._transaction() as cursor:
            cursor.execute(store.claim_notification_sql, (owner, until, stamp, stamp, stamp))
            row = cursor.fetchone()
            if row is None:
                return None
            cursor.execute("SELECT * FROM notifications WHERE id = ?", (row["id"],))
            return self._notification(cursor.fetchone())

    def sort_notification(
        self, note: InboundNotification, sort: Callable[[EventLedger], dict[str, Any]]
    ) -> InboundNotification:
        """``sort`` run on the ledger and its result stored as the notification's work, in
        one transaction: an event is entered as seen only together with what it asks for."""
        with self._transaction() as cursor:
            work = sort(_CursorLedger(cursor, self._store))
            cursor.execute(
                """UPDATE notifications SET work = ?, updated_at = ?
                WHERE id = ? AND state = 'working' AND lease_owner = ?""",
                (
                    self._store.json(work),
                    self._store.instant(self._clock()),
                    note.id,
                    note.lease_owner,
                ),
            )
            self._still_leased(cursor, note)
        return InboundNotification(
            note.id, note.subscription, note.body, work, note.attempts, note.lease_owner
        )

    def finish_notification(self, note: InboundNotification) -> None:
        """Done: everything it asked for was done."""
        self._notification_update(note, "state = 'done', last_error = NULL", ())

    def retry_notification(
        self, note: InboundNotification, error: AdapterError, at: datetime
    ) -> None:
        """Due again at ``at``: a server was unavailable."""
        store = self._store
        self._notification_update(
            note,
            "state = 'pending', due_at = ?, last_error = ?",
            (store.instant(at), store.json(_error_record(error))),
        )

    def fail_notification(self, note: InboundNotification, error: AdapterError) -> None:
        """Failed: a retry cannot help (refused, malformed); kept for an operator."""
        record = self._store.json(_error_record(error))
        self._notification_update(note, "state = 'failed', last_error = ?", (record,))

    def schedule_recovery(self, subscription: str, through: int, at: datetime) -> str | None:
        """A recovery of the Subscription's events up to ``through``, due at ``at`` (after
        the wait for late deliveries), recorded as a notification whose work is known; None
        when one for the same events exists."""
        store = self._store
        now = store.instant(self._clock())
        note_id = str(uuid.uuid4())
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO notifications (id, subscription, body, delivery, state, work,
                    due_at, received_at, updated_at)
                VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                (
                    note_id, subscription, b"", f"recover:{through}",
                    store.json({"recover": through}), store.instant(at), now, now,
                ),
            )  # fmt: skip
            return note_id if cursor.rowcount == 1 else None

    def next_notification_due(self) -> datetime | None:
        """When the next pending notification falls due; None when none is pending."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT MIN(due_at) AS due FROM notifications WHERE state = 'pending'")
            row = cursor.fetchone()
            return (
                None if row is None or row["due"] is None else self._store.from_instant(row["due"])
            )

    def notification_states(self) -> dict[str, int]:
        """Notifications by state: what operators and tests look at."""
        with self._transaction(write=False) as cursor:
            cursor.execute("SELECT state, COUNT(*) AS n FROM notifications GROUP BY state")
            return {row["state"]: int(row["n"]) for row in cursor.fetchall()}

    def _notification_update(
        self, note: InboundNotification, assignments: str, params: Sequence[Any]
    ) -> None:
        now = self._store.instant(self._clock())
        with self._transaction() as cursor:
            cursor.execute(
                f"""UPDATE notifications SET {assignments}, lease_owner = NULL,
                    lease_until = NULL, updated_at = ?
                WHERE id = ? AND state = 'working' AND lease_owner = ?""",  # noqa: S608
                (*params, now, note.id, note.lease_owner),
            )
            self._still_leased(cursor, note)

    def _still_leased(self, cursor: _Cursor, note: InboundNotification) -> None:
        if cursor.rowcount != 1:
            raise OutboxError(
                f"notification {note.id} is no longer leased to {note.lease_owner}: stop",
                source=self.source,
            )

    def _notification(self, row: Record) -> InboundNotification:
        return InboundNotification(
            id=row["id"],
            subscription=row["subscription"],
            body=bytes(row["body"]),
            work=self._store.from_json(row["work"]),
            attempts=int(row["attempts"]),
            lease_owner=row["lease_owner"],
        )


class _CursorLedger:
    """The :class:`EventLedger` inside one transaction: a watermark row per Subscription and
    the numbers seen above it, folded into it as the gaps fill. The watermark row is written
    first, which locks it (PostgreSQL) so that two receivers never fold at once."""

    def __init__(self, cursor: _Cursor, store: _Store) -> None:
        self._cursor, self._store = cursor, store

    def watermark(self, subscription: str) -> Watermark:
        self._cursor.execute(
            "SELECT number, at FROM event_marks WHERE subscription = ?", (subscription,)
        )
        row = self._cursor.fetchone()
        if row is None:
            return Watermark()
        at = row["at"]
        return Watermark(int(row["number"]), None if at is None else self._store.from_instant(at))

    def record(self, subscription: str, number: int, timestamp: datetime | None) -> bool:
        cursor, store = self._cursor, self._store
        cursor.execute(
            """INSERT INTO event_marks (subscription, number) VALUES (?, 0)
            ON CONFLICT DO NOTHING""",
            (subscription,),
        )
        cursor.execute(
            "UPDATE event_marks SET number = number WHERE subscription = ?", (subscription,)
        )
        mark = self.watermark(subscription)
        if number <= mark.number:
            return False
        stamp = None if timestamp is None else store.instant(timestamp)
        cursor.execute(
            """INSERT INTO events_above (subscription, number, at) VALUES (?, ?, ?)
            ON CONFLICT DO NOTHING""",
            (subscription, number, stamp),
        )
        if cursor.rowcount != 1:
            return False
        self._fold(subscription, mark)
        return True

    def _fold(self, subscription: str, mark: Watermark) -> None:
        """The numbers right above the watermark moved into it."""
        cursor, store = self._cursor, self._store
        cursor.execute(
            "SELECT number, at FROM events_above WHERE subscription = ? ORDER BY number",
            (subscription,),
        )
        number, at = mark.number, mark.timestamp
        for row in cursor.fetchall():
            if int(row["number"]) != number + 1:
                break
            number += 1
            at = store.from_instant(row["at"]) if row["at"] is not None else at
        if number == mark.number:
            return
        cursor.execute(
            "DELETE FROM events_above WHERE subscription = ? AND number <= ?",
            (subscription, number),
        )
        cursor.execute(
            "UPDATE event_marks SET number = ?, at = ? WHERE subscription = ?",
            (number, None if at is None else store.instant(at), subscription),
        )

    def missing(self, subscription: str, through: int) -> tuple[int, ...]:
        mark = self.watermark(subscription).number
        self._cursor.execute(
            "SELECT number FROM events_above WHERE subscription = ? AND number <= ?",
            (subscription, through),
        )
        seen = {int(row["number"]) for row in self._cursor.fetchall()}
        return tuple(n for n in range(mark + 1, through + 1) if n not in seen)


class _DurableLedger:
    """The :class:`EventLedger` of an outbox, one transaction per call."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def watermark(self, subscription: str) -> Watermark:
        with self._outbox._transaction(write=False) as cursor:
            return _CursorLedger(cursor, self._outbox._store).watermark(subscription)

    def record(self, subscription: str, number: int, timestamp: datetime | None) -> bool:
        with self._outbox._transaction() as cursor:
            return _CursorLedger(cursor, self._outbox._store).record(
                subscription, number, timestamp
            )

    def missing(self, subscription: str, through: int) -> tuple[int, ...]:
        with self._outbox._transaction(write=False) as cursor:
            return _CursorLedger(cursor, self._outbox._store).missing(subscription, through)


def open_outbox(
    url: str, *, now: Clock = _utcnow, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> Outbox:
    """The outbox at ``url``: ``sqlite:///outbox.db`` in the working folder or
    ``sqlite:////absolute/path/outbox.db`` (as SQLAlchemy reads them; created with its folder)
    or ``postgresql://user@host:port/database`` (the database must exist), migrated to this
    adapter's schema."""
    parts = urlsplit(url)
    try:
        if parts.scheme == "sqlite":
            return Outbox(_SqliteStore(_sqlite_path(url), busy_timeout_s), now)
        if parts.scheme in {"postgresql", "postgres"}:
            return Outbox(_PostgresStore(url, busy_timeout_s), now)
    except (OSError, sqlite3.Error, psycopg.Error) as e:
        raise OutboxError(f"cannot open the outbox: {e}", source=_without_password(url)) from e
    raise OptionsError(
        f"the outbox URL scheme {parts.scheme!r} is not supported: use "
        "sqlite:////path/to/outbox.db or postgresql://user@host/database",
        field="outbox",
    )


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    path = unquote(parts.path).removeprefix("/")
    if parts.netloc or parts.query or parts.fragment or not path or path.endswith("/"):
        raise OutboxError(
            "an SQLite outbox URL is sqlite:/// and the file's path: relative to the working "
            "folder (sqlite:///outbox.db), or absolute (sqlite:////var/lib/fhir-genomics/outbox.db)",
            source=url,
        )
    return Path(path)


def outbox_exists(url: str) -> bool:
    """False only for an SQLite outbox whose file is not there yet (opening creates it)."""
    return urlsplit(url).scheme != "sqlite" or _sqlite_path(url).exists()
