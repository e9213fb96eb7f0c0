"""Sync with hospital FHIR servers: configuration, authentication (SMART Backend Services),
the FHIR client, pushing reports, the durable outbox and inbound Subscription notifications.

Data flow one way: :mod:`.config` -> :mod:`.auth` -> :mod:`.client` -> :mod:`.push`;
:mod:`.notifications` turns what a server tells us into triggers."""

from .auth import SmartBackendServices, StaticBearer, auth_for, generate_key, jwks, public_jwk
from .client import FhirClient, RetryPolicy, client_for
from .config import (
    BearerAuth,
    NoAuth,
    ServerConfig,
    SmartBackendAuth,
    Timeouts,
    load_server,
    load_servers,
)
from .notifications import (
    ConvertFile,
    EventLedger,
    FollowUpSearch,
    Ignored,
    InMemoryEventLedger,
    NotificationResult,
    ReevaluatePatient,
    Subscribed,
    classify,
    receive_notification,
)
from .outbox import Job, JobState, JobSummary, Outbox, open_outbox, patient_key
from .push import Progress, PushResult, push_bundle, resolve_patient

__all__ = [
    "BearerAuth",
    "ConvertFile",
    "EventLedger",
    "FhirClient",
    "FollowUpSearch",
    "Ignored",
    "InMemoryEventLedger",
    "Job",
    "JobState",
    "JobSummary",
    "NoAuth",
    "NotificationResult",
    "Outbox",
    "Progress",
    "PushResult",
    "ReevaluatePatient",
    "RetryPolicy",
    "ServerConfig",
    "SmartBackendAuth",
    "SmartBackendServices",
    "StaticBearer",
    "Subscribed",
    "Timeouts",
    "auth_for",
    "classify",
    "client_for",
    "generate_key",
    "jwks",
    "load_server",
    "load_servers",
    "open_outbox",
    "patient_key",
    "public_jwk",
    "push_bundle",
    "receive_notification",
    "resolve_patient",
]
