"""Generated fast paths: each compiled node becomes one straight-line Python function.

The interpretive walker (:meth:`Validator._fields`) reads a node's tables for every
property of every object; that generality costs most of the time. On first use a node is
turned into Python source that does exactly that node's checks, with constants bound in the
function's namespace, and compiled once. The generated function is an accelerator, not a
second validator: when it meets anything wrong or unusual in an object it hands that object
to the walker (``slow``), which produces the diagnosis. So a generated check either returns
what the walker would (``None``, or warnings with their paths) or the walker's own answer.

The source is built only from this package's compiled structures: names are generated
(``S3``, ``C7``), package content reaches the code only as ``repr()`` literals or through
the namespace, never as code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .findings import Found, add, has_error, under, warn
from .memo import Memo, recall
from .primitives import Primitives
from .structure import Check, Exact, Kind, Node, Prop, Slicing

__all__ = ["FastPaths"]

_Fields = Callable[[Node, Any, Any], Found]
_Value = Callable[[Prop, Any, Any], Found]
_Target = Callable[[frozenset[str], Any, Any], Found]
_FAIL = "return slow(N, obj, ctx)"
_CHAIN = 16  # up to this many keys, dispatch by comparisons; beyond, by a dict
_INLINE_SIZE = 8


class FastPaths:
    """Builds and installs the generated check of each node, lazily."""

    def __init__(
        self,
        primitives: Primitives,
        fields: _Fields,
        value: _Value,
        target: _Target,
        memo: Memo,
    ) -> None:
        self._primitives = primitives
        self._memo = memo
        self._fields = fields
        self._value = value
        self._target = target

    def install(self, node: Node) -> Check:
        """The node's check; the first call generates and installs the real one."""
        if node.check is None:

            def first(obj: Any, ctx: Any) -> Found:
                generated = self._generate(node)
                node.check = generated
                result: Found = generated(obj, ctx)
                return result

            node.check = first
        return node.check

    def _generate(self, node: Node) -> Check:
        source = _Source(self, node)
        text = source.text()
        code = compile(text, f"<fast path of {node.path} in {node.profile}>", "exec")
        exec(code, source.namespace)  # noqa: S102 - generated from our own tables, see above
        check: Check = source.namespace["check"]
        return check


class _Source:
    """The Python source of one node's check, and the namespace it runs in.

    Small child nodes made of primitives (Coding, CodeableConcept, Quantity, Period, ...)
    are inlined into their parent's function, so a Variant component is checked without a
    single call; a failure anywhere inside sends the function's own object to the walker.
    """

    def __init__(self, paths: FastPaths, node: Node) -> None:
        self.paths = paths
        self.node = node
        self.lines: list[str] = []
        self.fresh = 0
        self.namespace: dict[str, Any] = {
            "N": node,
            "slow": paths._fields,
            "VALUE": paths._value,
            "TARGET": paths._target,
            "add": add,
            "under": under,
            "warn": warn,
            "has_error": has_error,
            "MEMO": paths._memo.entries,
            "RECALL": recall,
        }

    def const(self, prefix: str, value: Any) -> str:
        """Bind ``value`` to a fresh name in the namespace."""
        name = f"{prefix}{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def var(self, stem: str) -> str:
        """A fresh local variable name."""
        self.fresh += 1
        return f"{stem}{self.fresh}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def fail(self, depth: int) -> None:
        self.lines.append("    " * depth + _FAIL)

    def text(self) -> str:
        self.emit(0, "def check(obj, ctx, fresh=False):")
        self.emit(1, "if MEMO and ctx is None and not fresh:  # a shared object: see .memo")
        self.emit(2, "m = MEMO.get(id(obj))")
        self.emit(2, "if m is not None:")
        self.emit(3, "return RECALL(m, N, check)")
        self.emit(1, "out = None")
        self._object(self.node, "obj", (), 1, (self.node,))
        self.emit(1, "return out")
        return "\n".join(self.lines) + "\n"

    def _object(
        self, node: Node, obj: str, segs: tuple[str, ...], depth: int, stack: tuple[Node, ...]
    ) -> None:
        """Inline checks of the object in variable ``obj`` against ``node``."""
        self.emit(depth, f"if {obj}.__class__ is not dict or not {obj}:")
        self.fail(depth + 1)
        keys = _ordered(node)
        if len(stack) > 1:  # inlined: rare keys send the object to the walker instead
            keys = [k for k in keys if not _cold(node.props[k])]
        elif node.resource:
            keys.append("resourceType")
        choices: dict[str, str] = {}
        for k in keys:
            prop = node.props.get(k)
            if prop is not None and prop.choice and prop.element not in choices:
                choices[prop.element] = self.var("ch")
                self.emit(depth, f"{choices[prop.element]} = None")
        key, value = self.var("k"), self.var("v")
        self.emit(depth, f"for {key}, {value} in {obj}.items():")
        walk = _Walk(node, value, segs, stack, choices, _hot(node))
        if len(keys) <= _CHAIN:
            self._chain(walk, key, keys, depth + 1)
        else:
            index = self.const("IDX", {k: j for j, k in enumerate(keys)})
            j = self.var("j")
            self.emit(depth + 1, f"{j} = {index}.get({key}, -1)")
            self.emit(depth + 1, f"if {j} < 0:")
            self.fail(depth + 2)
            self._tree(walk, j, list(enumerate(keys)), depth + 1)
        for req in node.required:
            absent = " and ".join(f"{k!r} not in {obj}" for k in req.keys)
            self.emit(depth, f"if {absent}:")
            self.fail(depth + 1)
        for invariant in node.invariants:
            self.emit(depth, f"if {self.const('I', invariant)}({obj}):")
            self.fail(depth + 1)

    def _chain(self, walk: _Walk, key: str, keys: list[str], depth: int) -> None:
        """Dispatch on the key with comparisons, the likeliest keys first."""
        for n, k in enumerate(keys):
            self.emit(depth, f"{'if' if n == 0 else 'elif'} {key} == {k!r}:")
            self._key(walk, k, depth + 1)
        self.emit(depth, "else:")
        self.fail(depth + 1)

    def _tree(self, walk: _Walk, j: str, keys: list[tuple[int, str]], depth: int) -> None:
        """Dispatch on the key's index (``j``) with a balanced tree of comparisons."""
        if len(keys) == 1:
            self._key(walk, keys[0][1], depth)
            return
        half = len(keys) // 2
        self.emit(depth, f"if {j} < {keys[half][0]}:")
        self._tree(walk, j, keys[:half], depth + 1)
        self.emit(depth, "else:")
        self._tree(walk, j, keys[half:], depth + 1)

    def _key(self, walk: _Walk, key: str, depth: int) -> None:
        prop = walk.node.props.get(key)
        if prop is None:  # resourceType
            self.emit(depth, "pass")
            return
        if prop.max == 0:
            self.fail(depth)
            return
        if prop.choice:
            var, base = walk.choices[prop.element], key.lstrip("_")
            self.emit(depth, f"if {var} is not None and {var} != {base!r}:")
            self.fail(depth + 1)
            self.emit(depth, f"{var} = {base!r}")
        here = (repr("." + key), *walk.segs)
        implied = key in walk.node.implied
        stack = walk.stack if key in walk.hot else ()  # () : call, do not inline
        if not prop.array:
            self._value(prop, walk.value, here, depth, stack=stack, implied=implied)
            return
        value = walk.value
        self.emit(depth, f"if {value}.__class__ is not list or not {value}:")
        self.fail(depth + 1)
        if prop.max is not None:
            self.emit(depth, f"if len({value}) > {prop.max}:")
            self.fail(depth + 1)
        if prop.min > 1:
            self.emit(depth, f"if len({value}) < {prop.min}:")
            self.fail(depth + 1)
        i, item = self.var("i"), self.var("x")
        item_segs = (f'f"[{{{i}}}]"', *here)
        if prop.slicing is not None:
            self._sliced(prop, prop.slicing, value, item_segs, depth=depth, stack=stack)
            return
        start = len(self.lines)
        self._value(prop, item, item_segs, depth + 1, stack=stack, implied=implied)
        body = self.lines[start:]
        counted = any(i in line for line in body)  # the index is needed only for paths
        self.lines[start:start] = ["    " * depth + _loop(i, item, value, counted)]

    def _value(
        self,
        prop: Prop,
        var: str,
        segs: tuple[str, ...],
        depth: int,
        *,
        stack: tuple[Node, ...],
        implied: bool = False,
    ) -> None:
        """The checks of one value in ``var`` of ``prop``; findings go under ``segs``.

        ``implied``: the value's pattern is already proved by the slice matching.
        """
        node = prop.node
        if prop.kind is Kind.PRIMITIVE:
            self._primitive(prop, var, depth)
        elif prop.kind is Kind.COMPLEX and node is not None:
            if _inlinable(node, stack):
                self._object(node, var, segs, depth, (*stack, node))
            else:
                self.paths.install(node)
                self.emit(depth, f"r = {self.const('C', node)}.check({var}, ctx)")
                self._merge(segs, depth)
        else:  # extensions, nested resources, a primitive's _name: the walker's own check
            self.emit(depth, f"r = VALUE({self.const('P', prop)}, {var}, ctx)")
            self._merge(segs, depth)
            return
        self._constraints(prop, var, segs, depth, implied)

    def _primitive(self, prop: Prop, var: str, depth: int) -> None:
        check = self.const("F", prop.prim)
        seen = self.paths._primitives.seen(prop.type)
        if seen is not None:
            known = self.const("S", seen)
            self.emit(depth, f"if {var}.__class__ is not str or {var} not in {known}:")
            self.emit(depth + 1, f"if {check}({var}) is not None:")
            self.fail(depth + 2)
        elif prop.type == "boolean":
            self.emit(depth, f"if {var}.__class__ is not bool:")
            self.fail(depth + 1)
        else:
            self.emit(depth, f"if {check}({var}) is not None:")
            self.fail(depth + 1)

    def _merge(self, segs: tuple[str, ...], depth: int) -> None:
        """Pass up a child's warnings; any error sends the whole object to the walker."""
        self.emit(depth, "if r is not None:")
        self.emit(depth + 1, "if has_error(r):")
        self.fail(depth + 2)
        self.emit(depth + 1, f"out = add(out, under(r, {', '.join(segs)}))")

    def _constraints(
        self, prop: Prop, var: str, segs: tuple[str, ...], depth: int, implied: bool
    ) -> None:
        """fixed, pattern, binding and reference targets, in the walker's order."""
        if prop.fixed is not None:
            self.emit(depth, f"if {var} != {self.const('X', prop.fixed)}:")
            self.fail(depth + 1)
        if prop.matches is not None and not implied:
            self.emit(depth, f"if not {self.const('M', prop.matches)}({var}):")
            self.fail(depth + 1)
        stringy = self.paths._primitives.seen(prop.type) is not None
        if prop.binding is not None and (prop.kind is Kind.COMPLEX or stringy):
            self.emit(depth, f"b = {self.const('B', prop.binding)}({var})")
            self.emit(depth, "if b is not None:")
            self.emit(depth + 1, 'if b[0] == "error":')
            self.fail(depth + 2)
            self.emit(depth + 1, f"out = warn(out, b[1], {', '.join(segs)})")
        if prop.targets is not None:
            targets = self.const("T", prop.targets)
            self.emit(depth, f'rf = {var}.get("reference")')
            self.emit(depth, f"if rf is not None and TARGET({targets}, rf, ctx) is not None:")
            self.fail(depth + 1)

    def _sliced(
        self,
        prop: Prop,
        slicing: Slicing,
        value: str,
        segs: tuple[str, ...],
        *,
        depth: int,
        stack: tuple[Node, ...],
    ) -> None:
        """Items checked against the slice they match; then the slices' counts."""
        if any(s.min > 0 and not s.decidable for s in slicing.bounded):
            self.fail(depth)  # the walker reports the slice as not checkable
            return
        slices = slicing.slices
        order = self.const("SI", {s: k for k, s in enumerate(slices)})
        fast = [s.prop.node if _direct(s.prop) else None for s in slices]
        for node in fast:
            if node is not None:
                self.paths.install(node)
        nodes = self.const("SN", tuple(fast))
        props = self.const("SP", tuple(s.prop for s in slices))
        i, item = segs[0][4:-3], self.var("x")  # the index variable inside f"[{i}]"
        counts, k, n = self.var("cnt"), self.var("s"), self.var("n")
        self.emit(depth, f"{counts} = [0] * {len(slices)}")
        self.emit(depth, f"for {i}, {item} in enumerate({value}):")
        if slicing.exact is not None:
            self._lookup(slicing.exact, order, item, k, depth + 1)
        else:
            self.emit(depth + 1, f"{k} = {self.const('MATCH', slicing.match)}({item})")
            self.emit(depth + 1, f"if {k} is not None:")
            self.emit(depth + 2, f"{k} = {order}[{k}]")
        self.emit(depth + 1, f"if {k} is None:")
        if slicing.closed:
            self.fail(depth + 2)
        else:
            self._value(prop, item, segs, depth + 2, stack=stack)
        self.emit(depth + 1, "else:")
        self.emit(depth + 2, f"{counts}[{k}] += 1")
        self.emit(depth + 2, f"{n} = {nodes}[{k}]")
        self.emit(depth + 2, f"if {n} is not None:")
        self.emit(depth + 3, f"r = {n}.check({item}, ctx)")
        self.emit(depth + 2, "else:")
        self.emit(depth + 3, f"r = VALUE({props}[{k}], {item}, ctx)")
        self._merge(segs, depth + 2)
        self._counts(slicing, counts, depth)

    def _lookup(self, exact: Exact, order: str, item: str, k: str, depth: int) -> None:
        """Inline slice matching: the first (system, code) found in the index decides."""
        index = self.const("EX", {key: self.namespace[order][s] for key, s in exact.index.items()})
        codings, c = self.var("cl"), self.var("c")
        self.emit(depth, f"{k} = None")
        self.emit(depth, f"{codings} = {item}.get({exact.element!r}) if {_is_dict(item)} else None")
        if exact.concept:
            self.emit(
                depth, f'{codings} = {codings}.get("coding") if {_is_dict(codings)} else None'
            )
        else:
            self.emit(depth, f"if {codings}.__class__ is dict:")
            self.emit(depth + 1, f"{codings} = ({codings},)")
        self.emit(depth, f"if {codings}.__class__ is list or {codings}.__class__ is tuple:")
        self.emit(depth + 1, f"for {c} in {codings}:")
        self.emit(depth + 2, f"if {c}.__class__ is dict:")
        self.emit(depth + 3, "try:")
        self.emit(depth + 4, f'{k} = {index}.get(({c}.get("system"), {c}.get("code")))')
        self.emit(depth + 3, "except TypeError:  # not a code")
        self.emit(depth + 4, "continue")
        self.emit(depth + 3, f"if {k} is not None:")
        self.emit(depth + 4, "break")

    def _counts(self, slicing: Slicing, counts: str, depth: int) -> None:
        slices = slicing.slices
        for s in slicing.bounded:
            at = f"{counts}[{slices.index(s)}]"
            tests = ([f"{at} < {s.min}"] if s.min else []) + (
                [] if s.max is None else [f"{at} > {s.max}"]
            )
            self.emit(depth, f"if {' or '.join(tests)}:")
            self.fail(depth + 1)


@dataclass(frozen=True, slots=True)
class _Walk:
    """Where the generator is: the node, the value variable, the path, the inlined nodes."""

    node: Node
    value: str  # the variable holding the current property's value
    segs: tuple[str, ...]  # path segments from the object up to the function's own object
    stack: tuple[Node, ...]  # the nodes inlined so far; empty: children are called
    choices: dict[str, str]  # choice element -> the variable remembering the type seen
    hot: frozenset[str]  # keys whose small children are inlined


def _is_dict(var: str) -> str:
    return f"{var}.__class__ is dict"


def _loop(i: str, item: str, values: str, counted: bool) -> str:
    if counted:
        return f"for {i}, {item} in enumerate({values}):"
    return f"for {item} in {values}:"


#: elements that most instances of their datatype carry, tried first
_COMMON = frozenset({"system", "code", "display", "coding", "text", "value", "unit", "reference"})


def _ordered(node: Node) -> list[str]:
    """The node's keys, likeliest first: required, constrained, common, other, rare."""
    required = {k for req in node.required for k in req.keys}

    def rank(key: str) -> int:
        prop = node.props[key]
        if key.startswith("_"):
            return 5
        if key in required:
            return 0
        if prop.extra or prop.slicing is not None:
            return 1
        if key in _COMMON:
            return 2
        return 4 if prop.element in ("id", "extension", "modifierExtension") else 3

    return sorted(node.props, key=rank)


def _small(node: Node) -> bool:
    return len({p.element for p in node.props.values()}) <= _INLINE_SIZE


def _leafy(node: Node, levels: int) -> bool:
    """Whether, rare keys aside, the node holds only primitives within ``levels`` levels."""
    for prop in node.props.values():
        if _cold(prop) or prop.kind is Kind.PRIMITIVE:
            continue
        if prop.kind is not Kind.COMPLEX or prop.node is None or levels == 0:
            return False
        if prop.node is not node and not _leafy(prop.node, levels - 1):
            return False
    return True


def _inlinable(node: Node, stack: tuple[Node, ...]) -> bool:
    """Small leafy child nodes of hot keys (Coding, CodeableConcept, Quantity, ...) are inlined."""
    return bool(stack) and node not in stack and _small(node) and _leafy(node, 1)


def _hot(node: Node) -> frozenset[str]:
    """Keys worth inlining: all of a small node's; else the required and constrained ones."""
    if _small(node):
        return frozenset(node.props)
    required = {k for req in node.required for k in req.keys}
    return frozenset(
        k for k, p in node.props.items() if k in required or p.extra or p.slicing is not None
    )


def _cold(prop: Prop) -> bool:
    """Keys an inlined check leaves to the walker: rare, and costly to spell out."""
    return prop.key.startswith("_") or prop.element in ("id", "extension", "modifierExtension")


def _direct(prop: Prop) -> bool:
    """Whether a slice's items are checked by its node alone."""
    plain = prop.kind is Kind.COMPLEX or prop.kind is Kind.EXTENSION
    return plain and prop.node is not None and not prop.extra
