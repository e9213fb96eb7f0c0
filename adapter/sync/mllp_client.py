"""Sending one HL7 v2 message over MLLP and reading what its acknowledgement means for the job.

Transport: the Minimal Lower Layer Protocol (HL7 v2.5.1 Appendix C.4), framed by python-hl7's
``hl7.mllp`` streams, as the listener (:mod:`adapter.mllp`) reads them.

Decisions, each a policy of this module:

* **One connection per message.** The message goes out, its ACK is awaited for the server's
  read timeout, and the connection is closed: a late ACK can never be taken for the next
  message's. An EHR's interface engine keeps no state between connections that we need.
* **TLS** (``mllps://``): the server's certificate and host name are verified, as the
  server's ``tls`` settings say; a handshake that fails (an untrusted or expired certificate)
  is a connection that failed, so the job waits for the certificate to be fixed.
* **Unreachable or silent is "later".** No connection within the connect timeout, a
  connection closed before the ACK, or no ACK within the read timeout is
  :class:`~adapter.errors.ServerUnavailable`: the outbox sends the message again later.
  The message may have been taken; its control ID (MSH-10) is the same on every resend, so the
  receiver can recognise the second copy, as HL7 v2.5.1 2.10.2 lets it.
* **What the ACK says** (MSA-1, HL7 table 0008; original and enhanced modes):
  AA and CA: taken. AR and CR: refused for a reason unrelated to the content (the receiver is
  down or busy; table 0008 asks the sender to send it again), so later again, when its ERR-3
  conditions (HL7 table 0357) are none or only 206 (record locked) and 207 (application
  internal error); any other condition (an unsupported message type, event, processing ID or
  version, a segment or field the receiver refuses) is one no resend fixes: parked. AE and CE:
  the content is wrong, parked.
  An ACK for another control ID (MSA-2), or an answer that is no ACK, is out of step: parked;
  a refusal with MSA-2 empty (a receiver that could not read our MSH-10) is taken as ours.
  Parked is :class:`~adapter.errors.MessageRefused`, with the receiver's own words (MSA-3 and
  each ERR's ERR-8 user message or ERR-3 text) and conditions, for an operator.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Final

import hl7
from hl7.mllp import InvalidBlockError, open_hl7_connection

from ..errors import MessageRefused, ServerUnavailable
from .config import ServerConfig

__all__ = ["Acknowledgement", "read_acknowledgement", "send_message"]

#: MSA-1 codes meaning the message was taken
_TAKEN: Final = frozenset({"AA", "CA"})
#: MSA-1 codes refusing the message for reasons unrelated to its content
_REJECTED: Final = frozenset({"AR", "CR"})
_ERRORS: Final = frozenset({"AE", "CE"})
#: HL7 table 0357 conditions a later resend may get past: record locked, internal error
_TRANSIENT: Final = frozenset({"206", "207"})
#: the largest ACK taken; an ACK is a few hundred bytes
_MAX_ACK_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """What an ACK says: MSA-1, MSA-2, the receiver's words, and its ERR-3 conditions."""

    code: str
    control_id: str
    text: str
    conditions: tuple[str, ...]

    def settle(self, control_id: str, source: str) -> None:
        """Return if the message ``control_id`` was taken; else the error for the outbox."""
        if self.control_id != control_id and (self.control_id or self.code in _TAKEN):
            message = f"the ACK answers message {self.control_id!r}, not {control_id!r}"
            raise MessageRefused(message, ack_code=self.code, source=source)
        if self.code in _TAKEN:
            return
        said = f"{self.code}: {self.text}" if self.text else self.code
        if self.code in _REJECTED and _TRANSIENT.issuperset(self.conditions):
            raise ServerUnavailable(
                f"the receiver rejected the message for now ({said})", source=source
            )
        if self.code in _REJECTED | _ERRORS:
            message = f"the receiver refused the message ({said})"
            raise MessageRefused(
                message, ack_code=self.code, conditions=self.conditions, source=source
            )
        raise MessageRefused(
            f"MSA-1 {self.code!r} is no acknowledgment code", ack_code=self.code, source=source
        )


def read_acknowledgement(data: bytes, source: str) -> Acknowledgement:
    """The ACK in a frame's bytes (UTF-8, else ISO 8859-1); MessageRefused if it is none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    try:
        message = hl7.parse(text.replace("\n", "\r"))
        msa = message.segment("MSA")
    except (hl7.ParseException, KeyError, IndexError, ValueError):
        refusal = "the answer is no HL7 v2 ACK (no MSH and MSA)"
        raise MessageRefused(refusal, ack_code="", source=source) from None
    errors = [s for s in message if str(s[0]) == "ERR"]
    component = message.separators[3]
    conditions = tuple(c for e in errors if (c := _field(e, 3).split(component)[0]))
    words = [_field(msa, 3), *(_field(e, 8) or _part(_field(e, 3), component, 1) for e in errors)]
    return Acknowledgement(
        code=_field(msa, 1).split(component)[0],
        control_id=message.unescape(_field(msa, 2)),
        text="; ".join(message.unescape(w) for w in words if w),
        conditions=conditions,
    )


async def send_message(config: ServerConfig, data: bytes, control_id: str) -> None:
    """Send one message (its bytes) to an MLLP server and return once its ACK says it was
    taken; ServerUnavailable or MessageRefused as the module docstring says."""
    host, port = config.mllp_address()
    source = config.base_url
    timeouts = config.timeouts
    tls = config.tls.context() if config.tls is not None else None
    try:
        reader, writer = await asyncio.wait_for(
            open_hl7_connection(host, port, limit=_MAX_ACK_BYTES, ssl=tls), timeouts.connect
        )
    except (OSError, TimeoutError) as e:
        raise ServerUnavailable(f"cannot connect: {_reason(e)}", source=source) from None
    try:
        writer.writeblock(data)
        await writer.drain()
        answer: bytes = await asyncio.wait_for(reader.readblock(), timeouts.read)
    except TimeoutError:
        message = f"no ACK within {timeouts.read:g} s (timeouts.read)"
        raise ServerUnavailable(message, source=source) from None
    except (OSError, asyncio.IncompleteReadError) as e:
        hint = " (over TLS: does the receiver take our certificate?)" if tls else ""
        message = f"the connection ended before the ACK: {_reason(e)}{hint}"
        raise ServerUnavailable(message, source=source) from None
    except (ValueError, InvalidBlockError):
        raise MessageRefused("the answer is no MLLP frame", ack_code="", source=source) from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    read_acknowledgement(answer, source).settle(control_id, source)


def _field(segment: hl7.Segment, position: int) -> str:
    return str(segment[position]) if len(segment) > position else ""


def _part(value: str, separator: str, index: int) -> str:
    parts = value.split(separator)
    return parts[index] if len(parts) > index else ""


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__
