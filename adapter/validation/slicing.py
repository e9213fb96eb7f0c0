"""Slice matching: which slice of a repeating element an instance item belongs to.

Only ``value`` and ``pattern`` discriminators can be evaluated on an instance alone; the
others (``type`` outside choice elements, ``profile`` through ``resolve()``, ``exists``)
leave every slice *undecidable*, as does a slice with no value at the discriminator path:
its items are checked against the sliced element, and a required one is reported as not
checkable. With one discriminator whose slice values are strings, Codings or
CodeableConcepts, items are matched through a dict keyed by the value (or by (system,
code)), so matching a component to one of twenty slices is one lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .patterns import contains
from .structure import Exact, Prop, Slice, Slicing

__all__ = ["at_path", "build_slicing", "exact_index"]

_Matcher = Callable[[Any], Slice | None]
#: (values at the discriminator path, whether they are patterns rather than fixed values)
_Target = tuple[list[Any], bool]


def build_slicing(spec: dict[str, Any], slices: Sequence[Slice]) -> Slicing:
    """Compile one ElementDefinition.slicing with its slices."""
    closed = spec.get("rules") == "closed"
    discriminators = [
        (d.get("type"), str(d.get("path", "$this"))) for d in spec.get("discriminator", [])
    ]
    if not discriminators or any(kind not in ("value", "pattern") for kind, _ in discriminators):
        for s in slices:
            s.decidable = False
        return Slicing(tuple(slices), _never, closed)
    paths = [_segments(path) for _, path in discriminators]
    targets = {s.name: [_target(s.prop, segs) for segs in paths] for s in slices}
    matchable = [s for s in slices if all(t is not None for t in targets[s.name])]
    for s in slices:
        s.decidable = s in matchable
    if len(paths) == 1:
        match = _indexed(paths[0], matchable, {s.name: targets[s.name][0] for s in matchable})
        if match is not None:
            exact = exact_index(spec, slices) if len(matchable) == len(slices) else None
            return Slicing(tuple(slices), match, closed, exact=exact)
    return Slicing(tuple(slices), _linear(paths, matchable, targets), closed)


def _never(_item: Any) -> Slice | None:
    return None


def _segments(path: str) -> tuple[str, ...]:
    return () if path == "$this" else tuple(path.split("."))


def at_path(item: Any, segments: Sequence[str]) -> list[Any]:
    """The values at a dotted path in JSON, arrays flattened (FHIRPath navigation)."""
    values = [item]
    for seg in segments:
        found: list[Any] = []
        for value in values:
            if type(value) is dict:
                child = value.get(seg)
                if type(child) is list:
                    found.extend(child)
                elif child is not None:
                    found.append(child)
        values = found
    return values


def _target(prop: Prop, segments: Sequence[str]) -> _Target | None:
    """The fixed or pattern value(s) a slice demands at the discriminator path."""
    current = prop
    for i, seg in enumerate((*segments, None)):
        value = current.fixed if current.fixed is not None else current.pattern
        if value is not None:
            return at_path(value, segments[i:]), current.fixed is None
        node = current.node
        nxt = node.props.get(seg) if node is not None and seg is not None else None
        if nxt is None:
            return None
        current = nxt
    return None


def _satisfies(item: Any, segments: Sequence[str], target: _Target) -> bool:
    wanted, is_pattern = target
    found = at_path(item, segments)
    if is_pattern:
        return all(any(contains(v, w) for v in found) for w in wanted)
    return all(any(v == w for v in found) for w in wanted)


def _linear(
    paths: Sequence[Sequence[str]],
    slices: Sequence[Slice],
    targets: dict[str, list[_Target | None]],
) -> _Matcher:
    """Try each slice in turn: for several discriminators or unusual values."""
    checks = [(s, list(zip(paths, targets[s.name], strict=True))) for s in slices]

    def match(item: Any) -> Slice | None:
        for slice_, conds in checks:
            if all(t is not None and _satisfies(item, p, t) for p, t in conds):
                return slice_
        return None

    return match


def _key_of(value: Any) -> tuple[str, Any] | None:
    """How a slice's demanded value is indexed: as a string, a Coding or a CodeableConcept."""
    if type(value) is str:
        return "scalar", value
    if type(value) is dict and "code" in value and "coding" not in value:
        return "coding", (value.get("system"), value["code"])
    if type(value) is dict and type(value.get("coding")) is list and value["coding"]:
        first = value["coding"][0]
        if type(first) is dict and "code" in first:
            return "concept", (first.get("system"), first["code"])
    return None


def _indexed(
    segments: Sequence[str], slices: Sequence[Slice], targets: dict[str, _Target | None]
) -> _Matcher | None:
    """A dict-based matcher, or None when the slice values do not allow one."""
    index: dict[Any, list[tuple[Slice, _Target | None]]] = {}
    modes = set()
    for s in slices:
        target = targets[s.name]
        if target is None or len(target[0]) != 1:
            return None
        keyed = _key_of(target[0][0])
        if keyed is None:
            return None
        modes.add(keyed[0])
        exact = target[1] and _is_exact(keyed[0], target[0][0])  # a fixed value: verify equality
        index.setdefault(keyed[1], []).append((s, None if exact else target))
    if len(modes) != 1:
        return None
    return _index_matcher(modes.pop(), tuple(segments), index)


def exact_index(spec: dict[str, Any], slices: Sequence[Slice]) -> Exact | None:
    """The slicing as one (system, code) lookup, when that alone decides every slice."""
    discriminators = spec.get("discriminator", [])
    if len(discriminators) != 1 or discriminators[0].get("type") not in ("value", "pattern"):
        return None
    segments = _segments(str(discriminators[0].get("path")))
    if len(segments) != 1:
        return None
    index: dict[tuple[str, str], Slice] = {}
    modes = set()
    for s in slices:
        keyed = _exact_key(s.prop, segments[0])
        if keyed is None or keyed[1] in index:
            return None
        modes.add(keyed[0])
        index[keyed[1]] = s
    if len(modes) != 1:
        return None
    return Exact(segments[0], modes.pop() == "concept", index)


def _exact_key(prop: Prop, element: str) -> tuple[str, Any] | None:
    """(mode, (system, code)) when the slice is exactly a Coding pattern on one child."""
    child = prop.node.props.get(element) if prop.node is not None else None
    if child is None or child.pattern is None or prop.pattern or prop.fixed:
        return None  # only a child's pattern is proved by the lookup
    if child.array and child.type == "CodeableConcept":
        return None  # several concepts: left to the general matcher
    keyed = _key_of(child.pattern)
    if keyed is None or keyed[0] == "scalar" or not _is_exact(keyed[0], child.pattern):
        return None
    return keyed


def _is_exact(mode: str, value: Any) -> bool:
    """Whether matching the index key already proves the whole pattern matches."""
    if mode == "scalar":
        return True
    coding = value if mode == "coding" else value["coding"][0]
    one = mode == "coding" or (len(value) == 1 and len(value["coding"]) == 1)
    return one and set(coding) <= {"system", "code"} and "system" in coding


def _index_matcher(
    mode: str, segments: tuple[str, ...], index: dict[Any, list[tuple[Slice, _Target | None]]]
) -> _Matcher:
    """Match by dict lookup of each candidate key found at the discriminator path."""
    values = _single(segments[0]) if len(segments) == 1 else _nested(segments)

    def pick(item: Any, key: Any) -> Slice | None:
        try:
            hits = index.get(key)
        except TypeError:  # an unhashable value where a code was expected
            return None
        for slice_, target in hits or ():
            if target is None or _satisfies(item, segments, target):
                return slice_
        return None

    def match(item: Any) -> Slice | None:
        for value in values(item):
            if mode == "scalar":
                found = pick(item, value) if type(value) is str else None
            elif type(value) is not dict:
                continue
            elif mode == "coding":
                found = pick(item, (value.get("system"), value.get("code")))
            else:
                found = _concept(item, value, pick)
            if found is not None:
                return found
        return None

    return match


def _concept(
    item: Any, value: dict[str, Any], pick: Callable[[Any, Any], Slice | None]
) -> Slice | None:
    codings = value.get("coding")
    if type(codings) is list:
        for c in codings:
            if type(c) is dict:
                found = pick(item, (c.get("system"), c.get("code")))
                if found is not None:
                    return found
    return None


def _single(segment: str) -> Callable[[Any], Sequence[Any]]:
    """The values at a one-step path, without the general navigation."""

    def values(item: Any) -> Sequence[Any]:
        value = item.get(segment) if type(item) is dict else None
        if value is None:
            return ()
        return value if type(value) is list else (value,)

    return values


def _nested(segments: tuple[str, ...]) -> Callable[[Any], Sequence[Any]]:
    return lambda item: at_path(item, segments)
