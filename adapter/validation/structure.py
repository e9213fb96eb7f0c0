"""The compiled form of a StructureDefinition: what the validator walks instead of snapshots.

A :class:`Node` is one object-valued element (a resource, a datatype, a backbone element) as
one profile constrains it; it maps every JSON property name that may occur in the object to
a :class:`Prop` (choice types expand to one property per allowed type, primitives also get
their ``_name`` twin), so checking a property costs one dict lookup. Slices live on the
sliced property as a :class:`Slicing` with a precomputed index from discriminator value to
:class:`Slice`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, Protocol

from .patterns import Predicate
from .primitives import PrimitiveCheck
from .terminology import BindingCheck

__all__ = ["Check", "Exact", "Invariant", "Kind", "Node", "Prop", "Required", "Slice", "Slicing"]


class Check(Protocol):
    """The check of one object against a node: (object, bundle context) -> findings or None;
    ``fresh``: run it even if the object's outcome is remembered (see .memo)."""

    def __call__(self, obj: Any, ctx: Any, fresh: bool = False, /) -> Any: ...


#: a hand-written constraint: object -> [(relative path, message)]
Invariant = Callable[[Mapping[str, Any]], "list[tuple[str, str]] | None"]


class Kind(IntEnum):
    """How a property's value is checked."""

    PRIMITIVE = 0  # a JSON scalar, checked by a primitive check
    COMPLEX = 1  # an object walked against ``node``
    RESOURCE = 2  # a nested resource, validated against its own declared profiles
    EXTENSION = 3  # an extension whose definition is found by its url
    PRIMITIVE_ELEMENT = 4  # the ``_name`` object carrying a primitive's id and extensions


class Prop:
    """One JSON property of an object, with everything needed to check its value(s)."""

    __slots__ = (
        "array",
        "binding",
        "choice",
        "element",
        "extra",
        "fixed",
        "key",
        "kind",
        "matches",
        "max",
        "min",
        "node",
        "pattern",
        "prim",
        "slicing",
        "targets",
        "type",
    )

    def __init__(self, key: str, element: str, type_: str, kind: Kind) -> None:
        self.key = key
        self.element = element  # the element name, e.g. "value[x]"
        self.type = type_
        self.kind = kind
        self.array = False  # JSON array (the base element repeats)
        self.min = 0
        self.max: int | None = None  # None: unbounded
        self.choice = element.endswith("[x]")
        self.node: Node | None = None
        self.prim: PrimitiveCheck | None = None
        self.fixed: Any = None
        self.pattern: Any = None
        self.matches: Predicate | None = None  # compiled test for ``pattern``
        self.binding: BindingCheck | None = None
        self.targets: frozenset[str] | None = None  # allowed Reference target types
        self.slicing: Slicing | None = None
        self.extra = False  # any of fixed, pattern, binding, targets set

    def seal(self) -> None:
        """Compute the fast-path flag once every attribute is set."""
        self.extra = (
            self.fixed is not None
            or self.pattern is not None
            or self.binding is not None
            or self.targets is not None
        )


class Required:
    """An element with a minimum cardinality: present if any of ``keys`` is."""

    __slots__ = ("element", "keys", "min")

    def __init__(self, element: str, keys: tuple[str, ...], min_: int) -> None:
        self.element = element
        self.keys = keys
        self.min = min_


class Node:
    """An object-valued element as one profile constrains it."""

    __slots__ = (
        "check",
        "choices",
        "implied",
        "invariants",
        "path",
        "profile",
        "props",
        "required",
        "resource",
        "type",
    )

    def __init__(self, path: str, type_: str, profile: str, resource: bool) -> None:
        self.path = path  # element path in its definition, e.g. Observation.component
        self.type = type_  # FHIR type name, e.g. CodeableConcept or BackboneElement
        self.profile = profile  # canonical URL of the definition it was compiled from
        self.resource = resource  # the root of a resource ("resourceType" allowed)
        #: the generated fast check (see :mod:`.fastpath`), built on first use
        self.check: Check | None = None
        self.props: dict[str, Prop] = {}
        self.required: tuple[Required, ...] = ()
        self.invariants: tuple[Invariant, ...] = ()
        self.choices: dict[str, tuple[str, ...]] = {}  # "value" -> allowed type names
        #: children whose pattern the slice matching that leads here has already proved
        self.implied: frozenset[str] = frozenset()

    def unknown(self, key: str) -> str:
        """Why ``key`` is not allowed here."""
        name = key.lstrip("_")
        for prefix, allowed in self.choices.items():
            if name.startswith(prefix) and name[len(prefix) : len(prefix) + 1].isupper():
                return f"{key} is not allowed here: {prefix}[x] allows {', '.join(allowed)}"
        return f"unknown element {key!r}"


class Slice:
    """One named slice: its own constraints and cardinality."""

    __slots__ = ("decidable", "max", "min", "name", "prop")

    def __init__(self, name: str, prop: Prop, min_: int, max_: int | None) -> None:
        self.name = name
        self.prop = prop
        self.min = min_
        self.max = max_
        #: whether an item can be told to belong here (set when the slicing is compiled)
        self.decidable = True


class Exact:
    """A slicing decided by the (system, code) of a Coding or CodeableConcept child."""

    __slots__ = ("concept", "element", "index")

    def __init__(self, element: str, concept: bool, index: dict[tuple[str, str], Slice]):
        self.element = element  # the discriminating child, e.g. "code" or "coding"
        self.concept = concept  # a CodeableConcept (else Codings)
        self.index = index


class Slicing:
    """The slices of one repeating element and how to tell which an item belongs to."""

    __slots__ = ("bounded", "closed", "exact", "match", "slices")

    def __init__(
        self,
        slices: tuple[Slice, ...],
        match: Callable[[Any], Slice | None],
        closed: bool,
        exact: Exact | None = None,
    ) -> None:
        self.slices = slices
        self.match = match
        self.closed = closed
        #: set when one lookup of (system, code) under one child element decides the slice
        self.exact = exact
        #: slices whose cardinality must be counted
        self.bounded = tuple(s for s in slices if s.min > 0 or s.max is not None)
