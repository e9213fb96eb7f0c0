"""Deterministic business identifiers and the references that link resources.

Every resource gets a UUIDv5 derived from the conversion's report key, so converting the same
input again yields the same ids, and a transaction's conditional updates replace instead of
duplicate. The UUID serves three ways: ``Identifier`` (``urn:ietf:rfc:3986`` /
``urn:uuid:…``), the resource id (collection, NDJSON) and the ``urn:uuid:`` fullUrl
(transaction).

Builders emit form-neutral references: ``urn:uuid:`` plus ``Reference.type`` between the
resources of one conversion, and literal (``Patient/123``) or logical (``Reference.identifier``)
references to resources outside it. The writers adapt them to their output form.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from .._native import VariantIds
from ..errors import OptionsError
from ..model import AnalysisContext, PatientRef, VariantCall
from .codes import effective_time, instant

__all__ = [
    "URI_SYSTEM",
    "IdFactory",
    "identifier",
    "internal",
    "observed",
    "order_reference",
    "patient_reference",
    "performer_reference",
    "specimen_reference",
    "uuid_text",
]

#: Identifier.system for identifiers whose value is a URI (here ``urn:uuid:…``)
URI_SYSTEM = "urn:ietf:rfc:3986"


def _report_key(ctx: AnalysisContext) -> str:
    """The context's report key, else one made of subject, sample, build and file name."""
    if ctx.report_key:
        return ctx.report_key
    p = ctx.patient
    subject = p.id or f"{p.identifier_system}|{p.identifier_value}"
    return f"{subject}|{ctx.sample}|{ctx.build.value}|{ctx.input_name}"


_VARIANT_NIBBLE = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid_text(digits: str, start: int = 0) -> str:
    """32 hex digits (from ``start``) in UUID text form, 8-4-4-4-12."""
    d, i = digits, start
    return (
        f"{d[i : i + 8]}-{d[i + 8 : i + 12]}-{d[i + 12 : i + 16]}-"
        f"{d[i + 16 : i + 20]}-{d[i + 20 : i + 32]}"
    )


def _format(h: str) -> str:
    """A SHA-1 hex digest as UUID version 5 text (RFC 9562 §5.5): version and variant bits set.

    Formatted from the digest's text in one step: a uuid.UUID per variant costs more than
    the hash.
    """
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_NIBBLE[h[16]]}{h[17:20]}-{h[20:32]}"


class IdFactory:
    """UUIDv5 ids of one conversion: ``uuid5(ns, f"{report_key}|{kind}|…")``.

    The namespace is ``uuid5(NAMESPACE_URL, ctx.identifier_system)``. A variant's name is
    ``chrom|pos|ref|alt`` (``|end`` added for structural variants); an identical call
    repeated at the same locus gets ``|2``, ``|3``… so a Bundle never holds one id twice.
    SHA-1 runs over the name only: the hash of the prefix before it is made once and copied.
    Variant ids, one per variant, are made in C (:attr:`variants`, adapter/_native.c).
    """

    def __init__(self, ctx: AnalysisContext) -> None:
        namespace = uuid.uuid5(uuid.NAMESPACE_URL, ctx.identifier_system)
        prefix = namespace.bytes + f"{_report_key(ctx)}|".encode()
        self._prefix = prefix
        self._base = hashlib.sha1(prefix, usedforsecurity=False)
        #: the variant ids' state: the last locus and the names seen there
        self.variants = VariantIds(prefix + b"variant|")

    def resource(self, kind: str) -> str:
        """The id of the conversion's one resource of ``kind`` (e.g. ``report``)."""
        h = self._base.copy()
        h.update(kind.encode())
        return _format(h.hexdigest())

    def prefix(self, kind: str) -> bytes:
        """What SHA-1 runs over before the rest of a ``kind|…`` name that :meth:`resource`
        is given: for C, which hashes the rest itself."""
        return self._prefix + f"{kind}|".encode()

    def variant(self, call: VariantCall) -> tuple[str, bytes]:
        """The id of one variant call, as text and as 16 bytes; an identical call before it
        at its locus adds ``|n`` to the name."""
        end = call.structural.end if call.structural is not None else None
        return self.variants.variant(call.chrom, call.pos, call.ref, call.alt, end)


def identifier(rid: str) -> dict[str, str]:
    """The business Identifier carrying a resource's UUID."""
    return {"system": URI_SYSTEM, "value": f"urn:uuid:{rid}"}


def internal(resource_type: str, rid: str) -> dict[str, str]:
    """A reference to another resource of this conversion."""
    return {"reference": f"urn:uuid:{rid}", "type": resource_type}


def _external(
    resource_type: str, rid: str | None, ident: tuple[str, str] | None
) -> dict[str, Any] | None:
    """A literal reference when an id is known, else a logical one, else None."""
    if rid is not None:
        return {"reference": f"{resource_type}/{rid}"}
    if ident is not None:
        return {"type": resource_type, "identifier": {"system": ident[0], "value": ident[1]}}
    return None


def patient_reference(patient: PatientRef) -> dict[str, Any]:
    """The subject: ``Patient/<id>``, or by its business identifier."""
    ident = None
    if patient.identifier_system and patient.identifier_value:
        ident = (patient.identifier_system, patient.identifier_value)
    found = _external("Patient", patient.id, ident)
    if found is None:
        raise OptionsError("the patient needs an id or an identifier (system and value)")
    return found


def specimen_reference(ctx: AnalysisContext) -> dict[str, Any] | None:
    """The specimen, when the user named one."""
    return _external("Specimen", ctx.specimen_id, ctx.specimen_identifier)


def order_reference(ctx: AnalysisContext) -> dict[str, Any] | None:
    """The ServiceRequest, by its identifier (a server need not hold it to accept ours)."""
    return _external("ServiceRequest", None, ctx.order_identifier)


def performer_reference(ctx: AnalysisContext) -> dict[str, Any] | None:
    """The performing organization or practitioner, a literal reference as given."""
    return {"reference": ctx.performer} if ctx.performer else None


def observed(ctx: AnalysisContext) -> dict[str, Any]:
    """Subject, effective time, issue time and performer, in that order, as every
    Observation of the conversion states them (the times and performer when known)."""
    found: dict[str, Any] = {
        "subject": patient_reference(ctx.patient),
        "effectiveDateTime": effective_time(ctx.file_date, ctx.issued),
        "issued": instant(ctx.issued),
        "performer": [p] if (p := performer_reference(ctx)) else None,
    }
    return {k: v for k, v in found.items() if v is not None}
