"""Sync with hospital FHIR servers: configuration, authentication (SMART Backend Services),
the FHIR client, pushing reports, the durable outbox and inbound Subscription notifications;
and with EHRs that take genetics only as HL7 v2, over MLLP (:mod:`.mllp_client`).

Data flow one way: :mod:`.config` -> :mod:`.auth` -> :mod:`.client` -> :mod:`.push`;
:mod:`.notifications` turns what a server tells us into triggers."""

from .auth import SmartBackendServices, StaticBearer, auth_for, generate_key, jwks, public_jwk
from .client import FhirClient, RetryPolicy, client_for
from .config import (
    BearerAuth,
    Hl7v2Settings,
    NoAuth,
    ServerConfig,
    SmartBackendAuth,
    Timeouts,
    load_server,
    load_servers,
)
from .inbound import Inbound, Received, Retracted
from .mllp_client import Acknowledgement, read_acknowledgement, send_message
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
from .outbox import (
    InboundNotification,
    Job,
    JobState,
    JobSummary,
    Outbox,
    Registration,
    open_outbox,
    patient_key,
)
from .push import Progress, PushResult, push_bundle, resolve_patient
from .subscribe import backport_support, subscribe
from .worker import Sender, job_keys, send_request

__all__ = [
    "Acknowledgement",
    "BearerAuth",
    "ConvertFile",
    "EventLedger",
    "FhirClient",
    "FollowUpSearch",
    "Hl7v2Settings",
    "Ignored",
    "InMemoryEventLedger",
    "Inbound",
    "InboundNotification",
    "Job",
    "JobState",
    "JobSummary",
    "NoAuth",
    "NotificationResult",
    "Outbox",
    "Progress",
    "PushResult",
    "Received",
    "ReevaluatePatient",
    "Registration",
    "Retracted",
    "RetryPolicy",
    "Sender",
    "ServerConfig",
    "SmartBackendAuth",
    "SmartBackendServices",
    "StaticBearer",
    "Subscribed",
    "Timeouts",
    "auth_for",
    "backport_support",
    "classify",
    "client_for",
    "generate_key",
    "job_keys",
    "jwks",
    "load_server",
    "load_servers",
    "open_outbox",
    "patient_key",
    "public_jwk",
    "push_bundle",
    "read_acknowledgement",
    "receive_notification",
    "resolve_patient",
    "send_message",
    "send_request",
    "subscribe",
]
