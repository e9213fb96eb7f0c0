"""The CLI's sync commands: ``sync`` (queue reports and send them), ``outbox``
(``list``, ``send``, ``retry``, ``cancel``, ``purge``) and ``subscribe`` (register the
Subscriptions the adapter reacts to), thin shells over :mod:`adapter.sync`.

Where things are, unless given: the outbox ``$FHIR_GENOMICS_OUTBOX`` (default
``sqlite:///fhir-genomics-outbox.db`` in the working folder), the servers file
``$FHIR_GENOMICS_SERVERS`` (none: the server the environment describes, see
:mod:`adapter.sync.config`), the audit log ``$FHIR_GENOMICS_AUDIT_LOG`` (default
``fhir-genomics-audit.ndjson``). Job listings are JSON lines and never show a Bundle or a
patient identifier.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from .disclosure import AUDIT_LOG_ENV, deployment_audit_log
from .errors import DisclosureDenied, OptionsError, OutputError, SyncError
from .model import Sex
from .policy import read_consent
from .sync.auth import generate_key
from .sync.client import client_for
from .sync.config import SERVERS_ENV, ServerConfig, configured_servers
from .sync.outbox import (
    DEFAULT_OUTBOX,
    OUTBOX_ENV,
    PURGEABLE,
    JobState,
    JobSummary,
    Outbox,
    Registration,
    open_outbox,
)
from .sync.subscribe import subscribe
from .sync.worker import Sender, job_keys, send_request

__all__ = ["add_keys", "add_outbox", "add_subscribe", "add_sync"]


def add_sync(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sync",
        help="queue report Bundles for a FHIR server and send them",
        description="Each Bundle (a transaction the convert command wrote) becomes one job in "
        "the outbox; the policy is asked again before it is sent. Exit 0 when every job was "
        "sent, 8 when one waits for a retry or an operator, 7 when the policy denied one.",
    )
    p.add_argument("bundles", type=Path, nargs="+", help="transaction Bundles (JSON)")
    _add_places(p)
    _add_request(p)
    p.add_argument("--birth-date", metavar="YYYY-MM-DD")
    p.add_argument("--sex", choices=[s.value for s in Sex], default=Sex.UNKNOWN.value)
    p.add_argument("--queue-only", action="store_true", help="queue; `outbox send` sends")
    _add_lease(p)
    p.set_defaults(run=_run_sync)


def add_outbox(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("outbox", help="the durable queue of jobs to FHIR servers")
    actions = p.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="jobs as JSON lines, oldest first")
    listing.add_argument("--state", choices=[s.value for s in JobState])
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=_run_list)
    send = actions.add_parser("send", help="send every due job, then stop")
    _add_lease(send)
    send.set_defaults(run=_run_send)
    retry = actions.add_parser("retry", help="a failed or cancelled job queued again")
    retry.add_argument("job")
    retry.set_defaults(run=_run_retry)
    cancel = actions.add_parser("cancel", help="an open job never to be sent")
    cancel.add_argument("job")
    cancel.add_argument("--reason", required=True)
    cancel.set_defaults(run=_run_cancel)
    purge = actions.add_parser("purge", help="finished jobs deleted")
    purge.add_argument(
        "--state", action="append", required=True, choices=sorted(s.value for s in PURGEABLE)
    )
    purge.add_argument("--older-than-days", type=float, required=True)
    purge.set_defaults(run=_run_purge)
    for action in (listing, send, retry, cancel, purge):
        _add_places(action)


def add_subscribe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "subscribe",
        help="register on a FHIR server the Subscriptions the adapter reacts to",
        description="Registers rest-hook Subscriptions on DocumentReference (VCF files to "
        "convert) and Consent (consent changes), and topic-based ones where the server "
        "supports them, each notifying ENDPOINT/<key> with the token as its Authorization "
        "header; reuses those a previous run registered. The reports of the files notified are "
        "sent back under the purpose and options given here. Prints one JSON line per "
        "Subscription.",
    )
    p.add_argument(
        "--endpoint",
        required=True,
        metavar="URL",
        help="the adapter's public notification URL, e.g. https://genomics.example/v1/notifications",
    )
    p.add_argument(
        "--notify-token-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="a bearer token of the adapter's API with the genomics/notify scope",
    )
    p.add_argument("--topic", action="append", default=[], metavar="URL", help="repeatable")
    _add_request(p)
    _add_places(p)
    p.set_defaults(run=_run_subscribe)


def _add_request(p: argparse.ArgumentParser) -> None:
    """What reports are sent under: the policy decides on it again before every send."""
    p.add_argument("--purpose", required=True, metavar="CODE", help="purpose of use (TREAT...)")
    p.add_argument(
        "--consent", type=Path, action="append", default=[], metavar="FILE", help="repeatable"
    )
    p.add_argument("--indication", action="append", default=[], metavar="GENES")
    p.add_argument("--recipient", metavar="REF")
    p.add_argument("--break-glass", action="store_true")


def add_keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "keys",
        help="a new SMART Backend Services key: the private key to a file, its JWKS to stdout",
        description="Writes the private key (PKCS#8 PEM, readable by its owner only) and prints "
        "the public JWK Set to register with the FHIR server's authorization service.",
    )
    p.add_argument("--alg", choices=["ES384", "RS384"], default="ES384")
    p.add_argument("--out", type=Path, required=True, help="the private key file (new)")
    p.set_defaults(run=_run_keys)


def _run_keys(args: argparse.Namespace) -> int:
    pem, jwk = generate_key(args.alg)
    try:
        descriptor = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        where = str(args.out)
        raise OutputError(f"cannot create the key file: {exc.strerror}", source=where) from None
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    print(orjson.dumps({"keys": [jwk]}, option=orjson.OPT_INDENT_2).decode())
    return 0


def _add_places(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--outbox",
        metavar="URL",
        help=f"sqlite:///FILE or postgresql://... (default ${OUTBOX_ENV} or {DEFAULT_OUTBOX})",
    )
    p.add_argument("--servers", type=Path, metavar="FILE", help=f"default ${SERVERS_ENV}")
    p.add_argument("--server", metavar="NAME", help="the file's server to use")
    p.add_argument("--policy", type=Path, metavar="FILE", help="policy file (default: shipped)")
    p.add_argument("--audit-log", type=Path, metavar="FILE", help=f"default ${AUDIT_LOG_ENV}")


def _add_lease(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=300.0,
        help="how long a job stays this process's without news before another may take it "
        "over (renewed after every chunk)",
    )


def _outbox(args: argparse.Namespace) -> Outbox:
    return open_outbox(args.outbox or os.environ.get(OUTBOX_ENV) or DEFAULT_OUTBOX)


def _servers(args: argparse.Namespace) -> dict[str, ServerConfig]:
    return configured_servers(args.servers, args.server)


def _sender(args: argparse.Namespace, outbox: Outbox) -> Sender:
    audit = args.audit_log or deployment_audit_log()
    return Sender(
        outbox, _servers(args), audit_log=audit, policy=args.policy, lease_s=args.lease_seconds
    )


def _one_server(args: argparse.Namespace, what: str) -> ServerConfig:
    """The one configured server the command is for (``what`` it does there, for the error)."""
    servers = _servers(args)
    if len(servers) != 1:
        raise OptionsError(f"name the server {what} with --server", field="--server")
    (config,) = servers.values()
    return config


def _send_request(args: argparse.Namespace) -> dict[str, Any]:
    """What jobs are sent under, from the options of :func:`_add_request` (and ``sync``'s
    patient facts, where the command has them)."""
    return send_request(
        purpose=args.purpose,
        consents=[_consent_json(path) for path in args.consent],
        recipient=args.recipient,
        indication=args.indication,
        birth_date=getattr(args, "birth_date", None),
        sex=Sex(getattr(args, "sex", Sex.UNKNOWN.value)),
        break_glass=args.break_glass,
    )


def _run_sync(args: argparse.Namespace) -> int:
    server = _one_server(args, "to send to").name
    request = _send_request(args)
    with _outbox(args) as outbox:
        for path in args.bundles:
            bundle = _read_bundle(path)
            report, patient = job_keys(bundle)
            raw = orjson.dumps(bundle)
            _print(outbox.enqueue(server, report, patient, raw, request=request))
        if args.queue_only:
            return 0
        return _exit_code(asyncio.run(_sender(args, outbox).drain()))


def _consent_json(path: Path) -> dict[str, object]:
    read_consent(path)  # refused now, with its file named, rather than at send time
    loaded: dict[str, object] = orjson.loads(path.read_bytes())
    return loaded


def _read_bundle(path: Path) -> dict[str, object]:
    try:
        bundle = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise OptionsError(f"cannot read the Bundle: {exc}", source=str(path)) from None
    if not isinstance(bundle, dict) or bundle.get("type") != "transaction":
        raise OptionsError(
            "a transaction Bundle is sent (convert --format transaction)",
            source=str(path),
            field="Bundle.type",
        )
    return bundle


def _run_subscribe(args: argparse.Namespace) -> int:
    config = _one_server(args, "to subscribe on")
    if urlsplit(args.endpoint).scheme not in {"http", "https"}:
        raise OptionsError("the endpoint must be an http(s) URL", field="--endpoint")
    token = _token(args.notify_token_file)
    request = _send_request(args)

    async def run(outbox: Outbox) -> list[Registration]:
        async with client_for(config) as client:
            return await subscribe(
                client,
                config,
                outbox,
                endpoint=args.endpoint,
                token=token,
                request=request,
                topics=args.topic,
            )

    with _outbox(args) as outbox:
        for registration in asyncio.run(run(outbox)):
            shown = {
                "key": registration.key,
                "server": registration.server,
                "subscription": f"Subscription/{registration.subscription_id}",
                "criteria": registration.criteria,
                "topic": registration.topic,
                "endpoint": registration.endpoint,
            }
            sys.stdout.write(orjson.dumps(shown).decode() + "\n")
    return 0


def _token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise OptionsError(f"cannot read the token: {exc.strerror}", source=str(path)) from None
    if not token or any(c.isspace() for c in token):
        raise OptionsError("the token file must hold one bearer token", source=str(path))
    return token


def _run_send(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        return _exit_code(asyncio.run(_sender(args, outbox).drain()))


def _exit_code(done: list[JobSummary]) -> int:
    for summary in done:
        _print(summary)
    states = {s.state for s in done}
    if JobState.CANCELLED in states:
        return DisclosureDenied.exit_code
    return 0 if states <= {JobState.SENT} else SyncError.exit_code


def _run_list(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        state = JobState(args.state) if args.state else None
        for summary in outbox.list(state, args.limit):
            _print(summary)
    return 0


def _run_retry(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        _print(outbox.retry(args.job))
    return 0


def _run_cancel(args: argparse.Namespace) -> int:
    with _outbox(args) as outbox:
        _print(outbox.cancel(args.job, args.reason))
    return 0


def _run_purge(args: argparse.Namespace) -> int:
    before = datetime.now(UTC) - timedelta(days=args.older_than_days)
    with _outbox(args) as outbox:
        count = outbox.purge([JobState(s) for s in args.state], before)
    print(orjson.dumps({"purged": count}).decode())
    return 0


def _print(summary: JobSummary) -> None:
    sys.stdout.write(orjson.dumps(summary.as_json()).decode() + "\n")
    sys.stdout.flush()
