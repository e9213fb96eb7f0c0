"""Compile StructureDefinition snapshots into :mod:`.structure` nodes, once and lazily.

A snapshot is a flat list of ElementDefinitions; its element ids give the tree
(``Observation.component:gene-studied.value[x]`` is the ``value[x]`` child of the
``gene-studied`` slice of ``component``). Children that a snapshot does not spell out come
from the type's own definition (or the type profile's), compiled once and shared. Nodes are
registered before they are filled, so recursive types (Reference → Identifier → Reference)
compile without looping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .definitions import CORE_BASE, Definitions
from .invariants import DOMAIN_RESOURCE, invariants_for
from .patterns import pattern_predicate
from .primitives import Primitives
from .slicing import build_slicing
from .structure import Exact, Kind, Node, Prop, Required, Slice
from .terminology import Terminology

__all__ = ["Compiler"]

_SYSTEM_TYPES = "http://hl7.org/fhirpath/System."
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_EXTENSION_ELEMENTS = frozenset({"extension", "modifierExtension"})
_MISSING = Node("", "", "", False)


class _Def:
    """One ElementDefinition with its children and slices, from the snapshot's ids."""

    __slots__ = ("children", "id", "raw", "slices")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.id: str = raw.get("id") or raw["path"]
        self.children: list[_Def] = []
        self.slices: list[_Def] = []

    @property
    def name(self) -> str:
        return str(self.raw["path"]).rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class _Type:
    name: str
    profiles: tuple[str, ...]
    targets: tuple[str, ...]


@dataclass(slots=True)
class _Unit:
    """One StructureDefinition being compiled."""

    url: str
    type: str
    resource: bool
    by_id: dict[str, _Def]
    nodes: dict[tuple[str, str], Node] = field(default_factory=dict)


class Compiler:
    """Compiled nodes of StructureDefinitions by canonical URL, built on first use."""

    def __init__(
        self, definitions: Definitions, primitives: Primitives, terminology: Terminology
    ) -> None:
        self.definitions = definitions
        self.primitives = primitives
        self.terminology = terminology
        self._roots: dict[str, Node | None] = {}
        self._pending: dict[str, Node | None] = {}
        self._lock = threading.RLock()

    def structure(self, url: str) -> Node | None:
        """The root node of a (resource, datatype or extension) definition, or None."""
        node = self._roots.get(url, _MISSING)
        if node is not _MISSING:
            return node
        with self._lock:
            if url in self._roots:
                return self._roots[url]
            if url in self._pending:  # a recursive type, being compiled further up
                return self._pending[url]
            outermost = not self._pending
            self._pending[url] = None
            try:
                sd = self.definitions.structure(url)
                if sd is not None and "snapshot" in sd and sd.get("kind") != "logical":
                    self._compile(url, sd)
                node = self._pending[url]
                if outermost:  # other threads see nodes only once their graph is complete
                    self._roots.update(self._pending)
            finally:
                if outermost:
                    self._pending.clear()
            return node

    def base(self, type_name: str) -> Node | None:
        """The node of a core resource or datatype."""
        return self.structure(CORE_BASE + type_name)

    def type_of(self, url: str) -> str | None:
        """The type a profile constrains (e.g. Observation for the Variant profile)."""
        sd = self.definitions.structure(url)
        return None if sd is None else str(sd.get("type"))

    def _compile(self, url: str, sd: dict[str, Any]) -> None:
        root, by_id = _tree(sd["snapshot"]["element"])
        resource = sd.get("kind") == "resource"
        unit = _Unit(url, str(sd["type"]), resource, by_id)
        node = Node(str(root.raw["path"]), unit.type, url, resource)
        self._pending[url] = node
        unit.nodes[(root.id, unit.type)] = node
        self._fill(unit, node, root, unit.type)

    def _fill(self, unit: _Unit, node: Node, parent: _Def, type_name: str) -> None:
        required: list[Required] = []
        for child in parent.children:
            self._element(unit, node, child, required)
        node.required = tuple(required)
        keys = [node.path, type_name]
        if node.resource and self._is_domain_resource(unit.type):
            keys.append(DOMAIN_RESOURCE)
        node.invariants = invariants_for(*keys)

    def _is_domain_resource(self, type_name: str) -> bool:
        sd = self.definitions.structure(CORE_BASE + type_name)
        return sd is not None and sd.get("baseDefinition") == CORE_BASE + DOMAIN_RESOURCE

    def _element(self, unit: _Unit, node: Node, d: _Def, required: list[Required]) -> None:
        """Add the properties of one child element (and its slices) to ``node``."""
        name = d.name
        choice = name.endswith("[x]")
        by_type = {s.raw.get("sliceName"): s for s in d.slices} if choice else {}
        keys: list[str] = []
        props: list[Prop] = []
        types = self._types(unit, d)
        for t in types:
            key = name[:-3] + t.name[:1].upper() + t.name[1:] if choice else name
            source = by_type.get(key, d)
            own = t if source is d else _same_type(self._types(unit, source), t)
            prop = self._prop(unit, source, key, name, own)
            _cardinality(prop, d)
            node.props[key] = prop
            keys.append(key)
            props.append(prop)
            if prop.kind is Kind.PRIMITIVE:
                node.props["_" + key] = self._primitive_element(d, key, name)
                keys.append("_" + key)
            if source is not d and int(source.raw.get("min", 0)) > 0:
                required.append(Required(key, (key, "_" + key), int(source.raw["min"])))
        if choice:
            node.choices[name[:-3]] = tuple(t.name for t in types)
        if int(d.raw.get("min", 0)) > 0:
            required.append(Required(name, tuple(keys), int(d.raw["min"])))
        if d.slices and not choice and "slicing" in d.raw:
            slices = [self._slice(unit, s, name, types) for s in d.slices]
            slicing = build_slicing(d.raw["slicing"], slices)
            for prop in props:
                prop.slicing = slicing
            if slicing.exact is not None:
                _mark_implied(slicing.exact, slices, d.slices)
            needed = sum(s.min for s in slices)
            if needed > 0 and int(d.raw.get("min", 0)) == 0:  # the slices demand the element
                required.append(Required(name, tuple(keys), needed))

    def _slice(self, unit: _Unit, d: _Def, name: str, types: list[_Type]) -> Slice:
        own = self._types(unit, d) or types
        prop = self._prop(unit, d, name, name, own[0])
        _cardinality(prop, d)
        return Slice(str(d.raw.get("sliceName")), prop, prop.min, prop.max)

    def _primitive_element(self, d: _Def, key: str, name: str) -> Prop:
        """The ``_name`` twin of a primitive: its id and extensions, never its cardinality."""
        prop = Prop("_" + key, name, "Element", Kind.PRIMITIVE_ELEMENT)
        prop.node = self.base("Element")
        _cardinality(prop, d)
        prop.min, prop.max = 0, (0 if prop.max == 0 else None)
        prop.seal()
        return prop

    def _types(self, unit: _Unit, d: _Def) -> list[_Type]:
        raw = d.raw
        if "contentReference" in raw:
            target = unit.by_id.get(str(raw["contentReference"]).partition("#")[2])
            raw = target.raw if target is not None else raw
        found = []
        for t in raw.get("type", []):
            code = str(t["code"])
            if code.startswith(_SYSTEM_TYPES):
                code = _system_type(t, code)
            if code == "string" and d.name == "id" and _is_root_child(unit, d):
                code = "id"  # R4 types Resource.id as a System.String, but it is an id
            found.append(
                _Type(code, tuple(t.get("profile", ())), tuple(t.get("targetProfile", ())))
            )
        return found

    def _prop(self, unit: _Unit, d: _Def, key: str, name: str, t: _Type) -> Prop:
        prim = self.primitives.get(t.name)
        if prim is not None:
            prop = Prop(key, name, t.name, Kind.PRIMITIVE)
            prop.prim = prim
        elif t.name == "Resource" or t.name in self.definitions.resource_types:
            prop = Prop(key, name, t.name, Kind.RESOURCE)
        elif name in _EXTENSION_ELEMENTS and t.name == "Extension":
            prop = Prop(key, name, t.name, Kind.EXTENSION)
            if d.children or t.profiles:
                prop.node = self._child_node(unit, d, t)
        else:
            prop = Prop(key, name, t.name, Kind.COMPLEX)
            prop.node = self._child_node(unit, d, t)
        self._constraints(prop, d.raw, t)
        prop.seal()
        return prop

    def _constraints(self, prop: Prop, raw: dict[str, Any], t: _Type) -> None:
        """fixed[x], pattern[x], binding and reference targets of one element."""
        for k, v in raw.items():
            if k.startswith("fixed"):
                prop.fixed = v
            elif k.startswith("pattern"):
                prop.pattern = v
                prop.matches = pattern_predicate(v)
        binding = raw.get("binding")
        if binding:
            prop.binding = self.terminology.binding(
                str(binding.get("strength")), binding.get("valueSet"), t.name
            )
        if t.name == "Reference" and t.targets:
            names = {self.type_of(url) for url in t.targets}
            unknown = None in names or "Resource" in names  # an unloaded profile: any type
            prop.targets = None if unknown else frozenset(n for n in names if n is not None)

    def _child_node(self, unit: _Unit, d: _Def, t: _Type) -> Node | None:
        """The node for an object-valued element: spelled out in the snapshot, or its type's."""
        if "contentReference" in d.raw:
            target = unit.by_id.get(str(d.raw["contentReference"]).partition("#")[2])
            return None if target is None else self._inline(unit, target, t.name)
        if d.children:
            return self._inline(unit, d, t.name)
        if t.profiles:
            return self.structure(t.profiles[0]) or self.base(t.name)
        return self.base(t.name)

    def _inline(self, unit: _Unit, d: _Def, type_name: str) -> Node:
        key = (d.id, type_name)
        node = unit.nodes.get(key)
        if node is None:
            node = Node(str(d.raw["path"]), type_name, unit.url, False)
            unit.nodes[key] = node
            self._fill(unit, node, d, type_name)
        return node


def _tree(elements: list[dict[str, Any]]) -> tuple[_Def, dict[str, _Def]]:
    """The element tree of a snapshot, from the element ids."""
    defs = [_Def(raw) for raw in elements]
    by_id = {d.id: d for d in defs}
    for d in defs[1:]:
        parent_id, _, last = d.id.rpartition(".")
        name, colon, slice_name = last.partition(":")
        if colon:
            outer, slash, _ = slice_name.rpartition("/")
            base = by_id.get(f"{parent_id}.{name}" + (f":{outer}" if slash else ""))
            if base is not None:
                base.slices.append(d)
        elif parent_id in by_id:
            by_id[parent_id].children.append(d)
    return defs[0], by_id


def _system_type(t: dict[str, Any], code: str) -> str:
    for ext in t.get("extension", []):
        if ext.get("url") == _FHIR_TYPE_EXT:
            return str(ext.get("valueUrl") or ext.get("valueUri"))
    return "string" if code.endswith("String") else code.rsplit(".", 1)[-1].lower()


def _mark_implied(exact: Exact, slices: list[Slice], defs: list[_Def]) -> None:
    """A slice's own node need not re-test the pattern its matching has proved."""
    for slice_, d in zip(slices, defs, strict=True):
        if d.children and slice_.prop.node is not None:  # a node of this slice alone
            slice_.prop.node.implied = frozenset({exact.element})


def _same_type(types: list[_Type], wanted: _Type) -> _Type:
    """The type entry of a choice-type slice (it may add a profile) for the wanted type."""
    return next((t for t in types if t.name == wanted.name), wanted)


def _is_root_child(unit: _Unit, d: _Def) -> bool:
    return unit.resource and str(d.raw["path"]).count(".") == 1


def _cardinality(prop: Prop, d: _Def) -> None:
    raw = d.raw
    base_max = (raw.get("base") or {}).get("max", raw.get("max", "*"))
    prop.array = base_max != "1"
    prop.min = int(raw.get("min", 0))
    top = raw.get("max", "*")
    prop.max = None if top == "*" else int(top)
