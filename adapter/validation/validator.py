"""The validator: a resource's JSON against the compiled nodes of its profiles.

Each object goes first through its node's generated fast path (:mod:`.fastpath`); the
walker here (``_fields``) is what the fast path falls back on to say exactly what is
wrong, and the reference it must agree with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar, cast

from ..errors import PackageError, ValidationIssue
from .compiler import Compiler
from .definitions import CORE_BASE, Definitions, unversioned
from .fastpath import FastPaths
from .findings import Finding, Found, add, under
from .memo import Memo
from .primitives import Primitives
from .structure import Kind, Node, Prop, Slice, Slicing
from .terminology import Terminology

__all__ = ["IG_CANONICAL", "Validator"]

#: the Genomics Reporting IG's canonical base: every extension under it is known
IG_CANONICAL = "http://hl7.org/fhir/uv/genomics-reporting/"

#: within a Bundle: fullUrl -> resourceType, to check the targets of urn:uuid references
_Context = dict[str, str] | None
_T = TypeVar("_T")
_REF_TYPES_KEPT = 4096
_PICKS_KEPT = 256  # deciding children remembered per part checker (codes: a few dozen)


class Validator:
    """Checks FHIR R4 JSON resources against the compiled profiles of the loaded packages."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        primitives = Primitives(definitions)
        self._compiler = Compiler(definitions, primitives, Terminology(definitions))
        self._memo = Memo()
        self._fast = FastPaths(primitives, self._fields, self._value, self._target, self._memo)
        self._resource_types = definitions.resource_types - {"Resource", "DomainResource"}
        extension = self._compiler.base("Extension")
        if extension is None:
            raise PackageError("the FHIR core package has no Extension definition")
        self._any_extension = extension
        self._ref_types: dict[str, str | None] = {}

    def _compile_all(self, prefix: str) -> None:
        """Compile up front every StructureDefinition whose URL starts with ``prefix``."""
        for url in self._definitions.urls("StructureDefinition"):
            if url.startswith(prefix):
                self._compiler.structure(url)

    def validate(
        self, resource: Mapping[str, Any], profile: str | None = None
    ) -> list[ValidationIssue]:
        """Issues of ``resource`` against ``profile``, or its declared profiles and base type.

        A profile's snapshot includes every rule of its base type, so the base definition is
        walked only when no declared profile of the resource's type is loaded.
        """
        data = resource if type(resource) is dict else dict(resource)
        found = self._resource(data, profile, None)
        root = data.get("resourceType")
        root = root if type(root) is str and root in self._resource_types else "Resource"
        return [f.issue(root) for f in found]

    def sharing(self) -> AbstractContextManager[Callable[[_T], _T]]:
        """A block within which ``share(value)`` declares a JSON value never to change, so
        that its checks run once and are remembered (see :mod:`.memo`)::

            with validator.sharing() as share:
                builder = VariantBuilder(ctx, accession, share=share)
        """
        return self._memo.sharing()

    def part_checker(self, profile: str, element: str) -> Callable[[Any], list[ValidationIssue]]:
        """A check of one value of a top-level ``element`` of ``profile`` (one item, if it
        repeats), against the slice it matches; its issues' paths start ``<Type>.<element>``.

        For resources made from parts already checked in place (see adapter.conformance):
        rules across the whole resource (cardinalities, slice counts, invariants) are not
        checked here. Such parts share their unchanging codes, so where one child decides
        the slice (:class:`Exact`), a value whose child is the very object an earlier
        value's was belongs to the same slice.
        """
        url = unversioned(profile)
        node = self._compiler.structure(url)
        prop = node.props.get(element) if node is not None else None
        if node is None or prop is None:
            raise PackageError(f"{url} has no element {element} to check a part against")
        root, slicing = f"{node.path}.{element}", prop.slicing
        pick = _Picker(slicing) if slicing is not None else None

        def check(value: Any) -> list[ValidationIssue]:
            found: Found = None
            matched = prop
            if slicing is not None and pick is not None:
                picked = pick(value)
                if picked is not None:
                    matched = picked.prop
                elif slicing.closed:
                    found = [Finding(f"does not match any slice of {element} (slicing is closed)")]
            found = add(found, self._value(matched, value, None))
            return [f.issue(root) for f in _tagged(found, url)]

        return check

    def is_valid(self, resource: Mapping[str, Any], profile: str | None = None) -> bool:
        """Whether ``resource`` has no error (warnings allowed)."""
        return not any(i.severity == "error" for i in self.validate(resource, profile))

    # -- resources ----------------------------------------------------------------------

    def _resource(self, res: Any, profile: str | None, ctx: _Context) -> list[Finding]:
        if type(res) is not dict:
            return [Finding("a resource must be a JSON object")]
        rtype = res.get("resourceType")
        if type(rtype) is not str or rtype not in self._resource_types:
            return [Finding(f"unknown resourceType {rtype!r}", ".resourceType")]
        if rtype == "Bundle":
            ctx = _bundle_context(res)
        urls = [unversioned(profile)] if profile is not None else _declared(res)
        found: list[Finding] = []
        checked = 0
        for url in urls:
            node = self._compiler.structure(url)
            if node is None:
                message = f"profile {url} is not loaded; the resource was not checked against it"
                found.append(Finding(message, ".meta.profile", "warning"))
            elif node.path != rtype:
                found.append(Finding(f"profile {url} is for {node.path}, not {rtype}", ""))
            else:
                found.extend(_tagged(self._object(node, res, ctx), url))
                checked += 1
        if not checked:
            base = CORE_BASE + rtype
            node = self._compiler.structure(base)
            if node is not None:
                found.extend(_tagged(self._object(node, res, ctx), base))
        return _unique(found) if checked > 1 else found

    # -- objects ------------------------------------------------------------------------

    def _object(self, node: Node, obj: Any, ctx: _Context) -> Found:
        """Check one JSON object against a node, through its generated fast path."""
        check = node.check or self._fast.install(node)
        result: Found = check(obj, ctx)
        return result

    def _fields(self, node: Node, obj: Any, ctx: _Context) -> Found:
        """The walker: every rule of ``node`` on one object, with a finding for each breach.

        Generated fast paths hand an object here as soon as they meet a problem; it is also
        the reference the fast paths must agree with.
        """
        if type(obj) is not dict:
            return [Finding(f"expected an object, found {_json_kind(obj)}")]
        if not obj:
            return [Finding("ele-1: an element must have a value or children")]
        out: Found = None
        chosen: dict[str, str] = {}
        for key, value in obj.items():
            prop = node.props.get(key)
            if prop is None:
                if key != "resourceType" or not node.resource:
                    out = add(out, [Finding(node.unknown(key), "." + key)])
                continue
            found = self._property(prop, value, ctx, obj)
            if prop.choice:
                other = chosen.setdefault(prop.element, key.lstrip("_"))
                if other != key.lstrip("_"):
                    msg = f"only one {prop.element} is allowed (found {other} and {key})"
                    found = add(found, [Finding(msg)])
            if found:
                out = add(out, under(found, "." + key))
        for req in node.required:
            if not any(k in obj for k in req.keys):
                msg = f"missing required element {req.element} (min {req.min})"
                out = add(out, [Finding(msg, "." + req.element)])
        for invariant in node.invariants:
            broken = invariant(obj)
            if broken:
                out = add(out, [Finding(msg, trail) for trail, msg in broken])
        return out

    def _property(self, prop: Prop, value: Any, ctx: _Context, obj: dict[str, Any]) -> Found:
        if prop.max == 0:
            return [Finding(f"{prop.key} is not allowed here (max 0)")]
        if prop.array:
            return self._array(prop, value, ctx, obj)
        if type(value) is list:
            return [Finding(f"{prop.key} must be a single value, not an array")]
        return self._value(prop, value, ctx)

    def _array(self, prop: Prop, value: Any, ctx: _Context, obj: dict[str, Any]) -> Found:
        if type(value) is not list and not _lazy_array(value):
            return [Finding(f"{prop.key} must be an array")]
        if not value:
            return [Finding("ele-1: arrays must not be empty")]
        out: Found = None
        n = len(value)
        if prop.max is not None and n > prop.max:
            out = [Finding(f"{prop.element}: at most {prop.max} allowed, found {n}")]
        elif n < prop.min:
            out = [Finding(f"{prop.element}: at least {prop.min} required, found {n}")]
        if prop.slicing is not None:
            return add(out, self._sliced(prop, prop.slicing, value, ctx))
        nulls_ok = prop.kind is Kind.PRIMITIVE_ELEMENT or ("_" + prop.key) in obj
        for i, item in enumerate(value):
            found = None if item is None and nulls_ok else self._value(prop, item, ctx)
            if found:
                out = add(out, under(found, f"[{i}]"))
        return out

    def _sliced(self, prop: Prop, slicing: Slicing, values: list[Any], ctx: _Context) -> Found:
        """Check each item against the slice it matches, then the slices' cardinalities."""
        out: Found = None
        counts: dict[str, int] = {}
        for i, item in enumerate(values):
            slice_ = slicing.match(item)
            if slice_ is None:
                found = self._value(prop, item, ctx)
                if slicing.closed:
                    msg = f"does not match any slice of {prop.element} (slicing is closed)"
                    found = add(found, [Finding(msg)])
            else:
                counts[slice_.name] = counts.get(slice_.name, 0) + 1
                found = self._value(slice_.prop, item, ctx)
            if found:
                out = add(out, under(found, f"[{i}]"))
        for s in slicing.bounded:
            n = counts.get(s.name, 0)
            if n < s.min and not s.decidable:
                msg = f"slice {s.name!r} cannot be checked offline (needs at least {s.min})"
                out = add(out, [Finding(msg, severity="warning")])
            elif n < s.min or (s.max is not None and n > s.max):
                most = "*" if s.max is None else s.max
                msg = f"slice {s.name!r} of {prop.element} needs {s.min}..{most}, found {n}"
                out = add(out, [Finding(msg)])
        return out

    def _value(self, prop: Prop, value: Any, ctx: _Context) -> Found:
        """Check one value of a property: by kind, then fixed/pattern/binding/targets."""
        kind = prop.kind
        if kind is Kind.PRIMITIVE:
            problem = prop.prim(value) if prop.prim is not None else None
            if problem is not None:
                return [Finding(problem)]
            found: Found = None
        elif kind is Kind.EXTENSION:
            found = self._extension(prop, value, ctx)
        elif kind is Kind.RESOURCE:
            found = self._resource(value, None, ctx) or None
        else:  # an object: a datatype, a backbone element, or the _name twin of a primitive
            found = self._object(cast(Node, prop.node), value, ctx)
        if prop.extra:
            return self._constraints(prop, value, found, ctx)
        return found

    def _constraints(self, prop: Prop, value: Any, found: Found, ctx: _Context) -> Found:
        if prop.fixed is not None and value != prop.fixed:
            found = add(found, [Finding(f"must be exactly {_show(prop.fixed)}")])
        if prop.matches is not None and not prop.matches(value):
            found = add(found, [Finding(f"must match the pattern {_show(prop.pattern)}")])
        json_type = str if prop.kind is Kind.PRIMITIVE else dict
        if prop.binding is not None and type(value) is json_type:
            verdict = prop.binding(value)
            if verdict is not None:
                found = add(found, [Finding(verdict[1], severity=verdict[0])])
        if prop.targets is not None and type(value) is dict:
            found = add(found, self._target(prop.targets, value.get("reference"), ctx))
        return found

    def _target(self, targets: frozenset[str], ref: Any, ctx: _Context) -> Found:
        if type(ref) is not str:
            return None
        rtype = self._reference_type(ref, ctx)
        if rtype is None or rtype in targets:
            return None
        allowed = ", ".join(sorted(targets))
        return [Finding(f"a reference to a {rtype} is not allowed here ({allowed})", ".reference")]

    def _reference_type(self, ref: str, ctx: _Context) -> str | None:
        """The resource type a literal reference points at, when it can be told offline."""
        if ctx is not None and ref in ctx:
            return ctx[ref]
        if ref in self._ref_types:
            return self._ref_types[ref]
        found = _parsed_type(ref, self._resource_types)
        if len(self._ref_types) < _REF_TYPES_KEPT:  # the same subjects and performers recur
            self._ref_types[ref] = found
        return found

    def _extension(self, prop: Prop, value: Any, ctx: _Context) -> Found:
        """An extension: checked against its definition, found through the slice or its url."""
        if prop.node is not None:
            return self._object(prop.node, value, ctx)
        url = value.get("url") if type(value) is dict else None
        node = self._compiler.structure(url) if type(url) is str and "://" in url else None
        if node is not None and node.path == "Extension":
            return self._object(node, value, ctx)
        found = self._object(self._any_extension, value, ctx)
        if type(url) is not str:
            return found
        modifier = prop.element == "modifierExtension"
        severity = "error" if modifier or url.startswith(IG_CANONICAL) else "warning"
        msg = f"unknown extension {url}; only its structure was checked"
        return add(found, [Finding(msg, ".url", severity)])


def _tagged(found: Found, profile: str) -> list[Finding]:
    if not found:
        return []
    for f in found:
        if f.profile is None:
            f.profile = profile
    return found


def _unique(found: list[Finding]) -> list[Finding]:
    """Drop repeats of the same issue found through several profiles."""
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    kept = []
    for f in found:
        key = (f.severity, f.message, tuple(f.trail))
        if key not in seen:
            seen.add(key)
            kept.append(f)
    return kept


def _declared(res: dict[str, Any]) -> list[str]:
    meta = res.get("meta")
    profiles = meta.get("profile") if type(meta) is dict else None
    if type(profiles) is not list:
        return []
    if len(profiles) == 1 and type(profiles[0]) is str:  # the usual case: nothing to dedupe
        return [unversioned(profiles[0])]
    return list(dict.fromkeys(unversioned(p) for p in profiles if type(p) is str))


def _bundle_context(bundle: dict[str, Any]) -> dict[str, str]:
    """fullUrl -> resourceType of a Bundle's entries."""
    entries = bundle.get("entry")
    ctx: dict[str, str] = {}
    for entry in entries if type(entries) is list else ():
        if type(entry) is dict and type(entry.get("resource")) is dict:
            full_url, rtype = entry.get("fullUrl"), entry["resource"].get("resourceType")
            if type(full_url) is str and type(rtype) is str:
                ctx[full_url] = rtype
    return ctx


def _parsed_type(ref: str, known: frozenset[str]) -> str | None:
    """The resource type a literal reference names (None: contained, urn: or not RESTful)."""
    if ref.startswith(("#", "urn:")):
        return None
    parts = ref.partition("?")[0].split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] in known:
        return parts[-2]
    return None


def _json_kind(value: Any) -> str:
    if type(value) is list:
        return "an array"
    if value is None:
        return "null"
    return "a string" if type(value) is str else f"the value {value!r}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _lazy_array(value: Any) -> bool:
    """A sequence standing in for a JSON array, e.g. the writers' 16-byte-per-item
    reference list behind a million-variant report's ``result``."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


class _Picker:
    """A slicing's match, remembered by the identity of the deciding child (see
    :meth:`Validator.part_checker`)."""

    __slots__ = ("known", "slicing")

    def __init__(self, slicing: Slicing) -> None:
        self.slicing = slicing
        #: id(child) -> (the child, held so its id stays its own; the slice it decides)
        self.known: dict[int, tuple[Any, Slice | None]] = {}

    def __call__(self, value: Any) -> Slice | None:
        exact = self.slicing.exact
        if exact is None or type(value) is not dict:
            return self.slicing.match(value)
        child = value.get(exact.element)
        known = self.known.get(id(child))
        if known is not None and known[0] is child:
            return known[1]
        picked = self.slicing.match(value)
        if len(self.known) < _PICKS_KEPT:
            self.known[id(child)] = (child, picked)
        return picked
