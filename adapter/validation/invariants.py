"""The few FHIRPath invariants worth checking for what the adapter emits, written by hand.

There is no FHIRPath engine here. Checked: ele-1 (in the walker: no empty objects, arrays
or nulls), ext-1, qty-3, obs-3, obs-6, obs-7, dom-2..dom-5, bdl-1..bdl-5, bdl-7..bdl-12,
and the spec's rules for Bundle.entry.fullUrl (absolute; a urn:uuid well formed; a RESTful
URL ending in the resource's type and id). Every other invariant of the core and the IG
(for example per-1, ref-1, dom-6, txt-1/txt-2, and the IG's own) is not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .structure import Invariant

__all__ = ["DOMAIN_RESOURCE", "TRIGGERS", "invariants_for"]

Found = list[tuple[str, str]] | None


def _ext_1(obj: Mapping[str, Any]) -> Found:
    has_value = any(k.startswith(("value", "_value")) for k in obj)
    if bool(obj.get("extension")) == has_value:
        return [("", "ext-1: an extension must have either extensions or a value[x], not both")]
    return None


def _qty_3(obj: Mapping[str, Any]) -> Found:
    if "code" in obj and "system" not in obj:
        return [("", "qty-3: a Quantity with a unit code must have a system")]
    return None


def _obs_3(obj: Mapping[str, Any]) -> Found:
    if not ("low" in obj or "high" in obj or "text" in obj):
        return [("", "obs-3: a reference range must have at least a low, a high or a text")]
    return None


#: the JSON names of R4 Observation.value[x] (and of the _name twins of its primitives)
_OBSERVATION_VALUES = frozenset(
    prefix + t
    for prefix in ("value", "_value")
    for t in (
        "Quantity",
        "CodeableConcept",
        "String",
        "Boolean",
        "Integer",
        "Range",
        "Ratio",
        "SampledData",
        "Time",
        "DateTime",
        "Period",
    )
)


def _obs_6_7(obj: Mapping[str, Any]) -> Found:
    """obs-6 and obs-7; both only bite when the Observation has a value.

    This runs for every Variant, with its dozen components: written for few calls.
    """
    if _OBSERVATION_VALUES.isdisjoint(obj):
        return None
    found = []
    if "dataAbsentReason" in obj:
        found.append(("", "obs-6: dataAbsentReason must only be present if value[x] is not"))
    components = obj.get("component")
    own, codes = _codes(obj.get("code"))
    if codes and type(components) is list:
        try:  # first, in one pass that takes no care of malformed components: any code?
            for component in components:
                for c in component["code"]["coding"]:
                    if c["code"] in codes:
                        raise LookupError  # maybe: a closer look, below
        except (TypeError, LookupError, AttributeError):
            found.extend((f".component[{i}]", _OBS_7) for i in _sharing(components, own))
    return found or None


def _codes(concept: Any) -> tuple[set[tuple[str, str]], set[str]]:
    """(system, code) of a CodeableConcept's codings, and the codes alone."""
    codings = concept.get("coding") if type(concept) is dict else None
    own, codes = set(), set()
    for c in codings if type(codings) is list else ():
        if type(c) is dict and type(c.get("system")) is str and type(c.get("code")) is str:
            own.add((c["system"], c["code"]))
            codes.add(c["code"])
    return own, codes


def _sharing(components: list[Any], own: set[tuple[str, str]]) -> list[int]:
    """Positions of the components coded with one of ``own`` (malformed ones are skipped:
    the structural checks report them)."""
    hits = []
    for i, component in enumerate(components):
        try:
            for c in component["code"]["coding"]:
                if (c.get("system"), c["code"]) in own:
                    hits.append(i)
                    break
        except (TypeError, KeyError, AttributeError):
            continue
    return hits


_OBS_7 = (
    "obs-7: a component with the Observation's own code makes the Observation's value[x] "
    "not allowed"
)


def _contained(obj: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    items = obj.get("contained")
    if type(items) is list:
        yield from ((i, r) for i, r in enumerate(items) if type(r) is dict)


def _references(value: Any) -> Iterator[str]:
    """Every Reference.reference string in a JSON tree."""
    if type(value) is dict:
        for key, child in value.items():
            if key == "reference" and type(child) is str:
                yield child
            elif key != "contained":
                yield from _references(child)
    elif type(value) is list:
        for child in value:
            yield from _references(child)


def _dom(obj: Mapping[str, Any]) -> Found:
    """dom-2..dom-5: rules for contained resources."""
    if "contained" not in obj:
        return None
    found = []
    refs = set(_references(obj))
    refs.update(_references([r for _, r in _contained(obj)]))
    for i, res in _contained(obj):
        where = f".contained[{i}]"
        meta = res["meta"] if type(res.get("meta")) is dict else {}
        if "contained" in res:
            found.append((where, "dom-2: a contained resource must not contain resources"))
        if "versionId" in meta or "lastUpdated" in meta:
            found.append((where, "dom-4: a contained resource must not have versionId/lastUpdated"))
        if "security" in meta:
            found.append((where, "dom-5: a contained resource must not have a security label"))
        if "#" + str(res.get("id")) not in refs and "#" not in set(_references(res)):
            found.append((where, "dom-3: a contained resource must be referenced from elsewhere"))
    return found or None


_REQUEST_TYPES = frozenset({"batch", "transaction", "history"})
_RESPONSE_TYPES = frozenset({"batch-response", "transaction-response", "history"})


def _entries(obj: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    items = obj.get("entry")
    if type(items) is not list:
        return []
    return [(i, e) for i, e in enumerate(items) if type(e) is dict]


def _bundle(obj: Mapping[str, Any]) -> Found:
    """bdl-1..bdl-4, bdl-7, bdl-9..bdl-12."""
    kind = obj.get("type") if type(obj.get("type")) is str else None
    found: list[tuple[str, str]] = []
    if "total" in obj and kind not in ("searchset", "history"):
        found.append((".total", "bdl-1: total only when a search or history"))
    entries = _entries(obj)
    for i, entry in entries:
        found.extend(_bundle_entry(kind, i, entry))
    found.extend(_bdl_7(kind, entries))
    found.extend(_bundle_first(obj, kind, entries))
    return found or None


def _bundle_entry(kind: Any, i: int, entry: dict[str, Any]) -> Iterator[tuple[str, str]]:
    where = f".entry[{i}]"
    if "search" in entry and kind != "searchset":
        yield where + ".search", "bdl-2: entry.search only when a search"
    if ("request" in entry) != (kind in _REQUEST_TYPES):
        rule = "required" if kind in _REQUEST_TYPES else "not allowed"
        yield where, f"bdl-3: entry.request is {rule} in a {kind} Bundle"
    if ("response" in entry) != (kind in _RESPONSE_TYPES):
        rule = "required" if kind in _RESPONSE_TYPES else "not allowed"
        yield where, f"bdl-4: entry.response is {rule} in a {kind} Bundle"


def _bdl_7(kind: Any, entries: list[tuple[int, dict[str, Any]]]) -> Iterator[tuple[str, str]]:
    if kind == "history":
        return
    seen: set[tuple[Any, Any]] = set()
    for i, entry in entries:
        if type(entry.get("fullUrl")) is not str:
            continue
        res = entry.get("resource")
        meta = res.get("meta") if type(res) is dict else None
        version = meta.get("versionId") if type(meta) is dict else None
        key = (entry["fullUrl"], version if type(version) is str else None)
        if key in seen:
            yield f".entry[{i}].fullUrl", "bdl-7: fullUrl must be unique in a Bundle"
        seen.add(key)


def _bundle_first(
    obj: Mapping[str, Any], kind: Any, entries: list[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[str, str]]:
    """bdl-9..bdl-12: what documents and messages must start with."""
    first = entries[0][1].get("resource") if entries else None
    first_type = first.get("resourceType") if type(first) is dict else None
    if kind == "document":
        ident = obj.get("identifier")
        if type(ident) is not dict or "system" not in ident or "value" not in ident:
            yield "", "bdl-9: a document must have an identifier with a system and a value"
        if "timestamp" not in obj:
            yield "", "bdl-10: a document must have a timestamp"
        if first_type != "Composition":
            yield "", "bdl-11: a document must have a Composition as the first resource"
    if kind == "message" and first_type != "MessageHeader":
        yield "", "bdl-12: a message must have a MessageHeader as the first resource"


def _bundle_entry_rules(obj: Mapping[str, Any]) -> Found:
    """bdl-5 and bdl-8, which are on Bundle.entry, and the spec's rules for fullUrl."""
    found = []
    if not ("resource" in obj or "request" in obj or "response" in obj):
        found.append(("", "bdl-5: an entry must have a resource, a request or a response"))
    full_url = obj.get("fullUrl")
    if type(full_url) is str:
        if "/_history/" in full_url:
            found.append((".fullUrl", "bdl-8: fullUrl cannot be a version-specific reference"))
        problem = _full_url_problem(full_url, obj.get("resource"))
        if problem is not None:
            found.append((".fullUrl", problem))
    return found or None


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _full_url_problem(full_url: str, resource: Any) -> str | None:
    """fullUrl is absolute; a urn:uuid is a lowercase UUID; a RESTful URL ends Type/id."""
    if not _SCHEME.match(full_url):
        return f"fullUrl {full_url!r} must be an absolute URI"
    if full_url.startswith("urn:uuid:"):
        ok = _UUID.fullmatch(full_url) is not None
        return None if ok else f"fullUrl {full_url!r} is not a valid urn:uuid"
    if full_url.startswith("urn:") or type(resource) is not dict or "id" not in resource:
        return None
    tail = f"/{resource.get('resourceType')}/{resource['id']}"
    if full_url.endswith(tail):
        return None
    return f"fullUrl {full_url!r} does not match the resource's type and id (...{tail})"


#: key for the DomainResource rules (a node's own path never equals it)
DOMAIN_RESOURCE = "DomainResource"

_BY_KEY: dict[str, tuple[Invariant, ...]] = {
    "Extension": (_ext_1,),
    "Quantity": (_qty_3,),
    "Observation": (_obs_6_7,),
    "Observation.referenceRange": (_obs_3,),
    "Bundle": (_bundle,),
    "Bundle.entry": (_bundle_entry_rules,),
    DOMAIN_RESOURCE: (_dom,),
}


#: the key without which an invariant cannot break, for those that have one: a fast path
#: calls them only when the key is there
TRIGGERS: dict[Invariant, str] = {_qty_3: "code", _dom: "contained"}


def invariants_for(*keys: str) -> tuple[Invariant, ...]:
    """The invariants for a node, by its element path, its type and DOMAIN_RESOURCE."""
    found: dict[Invariant, None] = {}
    for key in keys:
        found.update(dict.fromkeys(_BY_KEY.get(key, ())))
    return tuple(found)
