"""Generated fast paths: each compiled node becomes one straight-line Python function.

The interpretive walker (:meth:`Validator._fields`) reads a node's tables for every
property of every object; that generality costs most of the time. On first use a node is
turned into Python source that does exactly that node's checks, with constants bound in the
function's namespace, and compiled once. The generated function is an accelerator, not a
second validator: when it meets anything wrong or unusual in an object it hands that object
to the walker (``slow``), which produces the diagnosis. So a generated check either returns
what the walker would (``None``, or warnings with their paths) or the walker's own answer.

Two things make the common case cheaper still. Values declared shared (see :mod:`.memo`)
are looked up before they are checked: a component the builder shares is checked once per
conversion. And a check learns the shapes of the objects it passes (see :class:`_Shapes`):
once a shape is frequent, the check is made again with a branch for objects of that shape
that checks their values one after the other, without dispatching on their keys.

The source is built only from this package's compiled structures: names are generated
(``S3``, ``C7``), package content reaches the code only as ``repr()`` literals or through
the namespace, never as code; a shape's keys, only as ``repr()`` literals of keys that the
node allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from .findings import Found, add, has_error, under, warn
from .invariants import TRIGGERS
from .memo import FAILED, Memo, into, keep, recall, recall_into
from .primitives import MAX_STRING, MEMO_LIMIT, MEMO_MAX_LEN, Primitives, StringForm
from .structure import Check, Exact, Kind, Node, Prop, Slice, Slicing

__all__ = ["FastPaths"]

_Fields = Callable[[Node, Any, Any], Found]
_Value = Callable[[Prop, Any, Any], Found]
_Target = Callable[[frozenset[str], Any, Any], Found]
_Recalled = Callable[[Any, Any, bool], Found]
_FAIL = "return slow(N, obj, ctx)"
_CHAIN = 16  # up to this many keys, dispatch by comparisons; beyond, by a dict
_INLINE_SIZE = 8
_SHAPE_AFTER = 16  # objects of one shape a node's check passed before the shape gets a branch
_SHAPES_MAX = 4  # branches per node
_SHAPES_SEEN = 64  # shapes counted per node, at most


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
        self._shapes: dict[Node, _Shapes] = {}

    def install(self, node: Node) -> Check:
        """The node's check; the first call generates and installs the real one."""
        if node.check is None:

            def first(obj: Any, ctx: Any, fresh: bool = False) -> Found:
                generated = self._generate(node)
                node.check = generated
                result: Found = generated(obj, ctx, fresh)
                return result

            node.check = first
        return node.check

    def kept(self, node: Node) -> tuple[_Skeleton, ...]:
        """The shapes ``node``'s check has learned (see :class:`_Shapes`)."""
        shapes = self._shapes.get(node)
        return () if shapes is None else shapes.kept

    def value_check(self, prop: Prop) -> _Recalled:
        """The walker's check of a value of ``prop``, called as :func:`.memo.recall` calls."""

        def check(obj: Any, ctx: Any, fresh: bool) -> Found:
            return self._value(prop, obj, ctx)

        return check

    def note(self, node: Node, obj: dict[str, Any]) -> None:
        """Count the shape (keys, in order) of an object that ``node``'s check passed; the
        check is made again when a shape becomes frequent, or when counting stops."""
        shapes = self._shapes[node]
        shape = tuple(obj)
        n = shapes.counts[shape] = shapes.counts.get(shape, 0) + 1
        if n == _SHAPE_AFTER:
            shapes.kept = (*shapes.kept, cast(_Skeleton, _skeleton(obj)))
        if n == _SHAPE_AFTER or not shapes.learning():
            node.check = self._generate(node)

    def _generate(self, node: Node) -> Check:
        source = _Source(self, node, self._shapes.setdefault(node, _Shapes()))
        text = source.text()
        code = compile(text, f"<fast path of {node.path} in {node.profile}>", "exec")
        exec(code, source.namespace)  # noqa: S102 - generated from our own tables, see above
        check: Check = source.namespace["check"]
        return check


class _Shapes:
    """The shapes of the objects a node's check passed, counted, and the frequent ones.

    A Variant conversion makes a million Observations with the same keys in the same order,
    and components of each slice alike. For such a shape the check gets a branch that
    checks the values in that order without dispatching on their keys, tracking choices or
    looking for required elements: the keys are known. The values' own inlined objects
    (codes, codings, quantities) are tried against the shapes they had in the object that
    made the shape frequent (its :data:`_Skeleton`). Objects of other shapes, and any with
    a problem, take the general path, as before.
    """

    __slots__ = ("counts", "kept")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], int] = {}
        self.kept: tuple[_Skeleton, ...] = ()

    def learning(self) -> bool:
        """Whether the check still counts shapes (there is room for more, and for counts)."""
        return len(self.kept) < _SHAPES_MAX and len(self.counts) < _SHAPES_SEEN


class _Source:
    """The Python source of one node's check, and the namespace it runs in.

    Small child nodes made of primitives (Coding, CodeableConcept, Quantity, Period, ...)
    are inlined into their parent's function, so a Variant component is checked without a
    single call; a failure anywhere inside sends the function's own object to the walker.
    """

    def __init__(self, paths: FastPaths, node: Node, shapes: _Shapes) -> None:
        self.paths = paths
        self.node = node
        self.shapes = shapes
        self.lines: list[str] = []
        self.fresh = 0
        self.recalls = False  # whether the body looks children up among the shared objects
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
            "UNSHARED": {},
            "RECALL": recall,
            "RECALL_INTO": recall_into,
            "INTO": into,
            "FAILED": FAILED,
            "KEEP": keep,
            "NOTE": paths.note,
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
        node = self.node
        self.emit(1, "out = None")
        for skeleton in self.shapes.kept:
            if self._tried(node, "obj", skeleton, (), 1, stack=(node,)):
                self.emit(2, "return out")
        self._object(node, "obj", (), 1, stack=(node,))
        if self.shapes.learning():
            self.emit(1, "NOTE(N, obj)")
        self.emit(1, "return out")
        return "\n".join([*self._head(), *self.lines]) + "\n"

    def _straight(
        self,
        node: Node,
        obj: str,
        skeleton: _Skeleton,
        segs: tuple[str, ...],
        depth: int,
        *,
        stack: tuple[Node, ...],
    ) -> bool:
        """The checks of an object known to have the skeleton's keys (see :class:`_Shapes`):
        each value's checks as the dispatch would pick them, in the skeleton's order,
        without the dispatch. Required elements are there and no choice is mixed (see
        :func:`_fits`); the values' own objects are tried against their skeletons in turn.
        Returns whether the keys' order matters: whether more than one value may add a
        finding (findings are listed in the object's order)."""
        keys, children = skeleton
        values = [self.var("a") for _ in keys]
        for key, value in zip(keys, values, strict=True):
            if key in node.props:  # not resourceType
                self.emit(depth, f"{value} = {obj}[{key!r}]")
        adding = 0
        for key, value, child in zip(keys, values, children, strict=True):
            if key in node.props:
                start = len(self.lines)
                walk = _Walk(node, value, segs, stack, {}, _hot(node), len(stack) == 1)
                self._key(walk, key, depth, child)
                adding += any("out = " in line for line in self.lines[start:])
        self._invariants(node, obj, depth, keys)
        return adding > 1

    def _tried(
        self,
        node: Node,
        obj: str,
        skeleton: _Skeleton,
        segs: tuple[str, ...],
        depth: int,
        *,
        stack: tuple[Node, ...],
    ) -> bool:
        """``if`` the object has the skeleton's keys: the straight checks. False, and
        nothing, when no object with those keys can pass."""
        if not _fits(node, skeleton[0]):
            return False
        test = len(self.lines)
        self.emit(depth, "")  # the test, once it is known whether the order matters
        if self._straight(node, obj, skeleton, segs, depth + 1, stack=stack):
            shape = f"tuple({obj}) == {self.const('SH', skeleton[0])}"
        else:  # the keys alone, without making a tuple of them
            keys = [f"len({obj}) == {len(skeleton[0])}"]
            shape = " and ".join([*keys, *(f"{k!r} in {obj}" for k in skeleton[0])])
        self.lines[test] = "    " * depth + f"if {obj}.__class__ is dict and {shape}:"
        return True

    def _head(self) -> list[str]:
        """The start: a shared object's outcome is recalled (see .memo); ``mm`` holds the
        shared objects' outcomes, none inside a Bundle, when the body looks children up."""
        if self.recalls:
            memo = "mm"
            lines = ["    mm = MEMO if ctx is None else UNSHARED", "    if mm and not fresh:"]
        else:
            memo = "MEMO"
            lines = ["    if MEMO and ctx is None and not fresh:"]
        return [
            "def check(obj, ctx, fresh=False):",
            *lines,
            f"        m = {memo}.get(id(obj))",
            "        if m is not None:",
            "            return RECALL(m, N, check, obj)",
        ]

    def _object(
        self,
        node: Node,
        obj: str,
        segs: tuple[str, ...],
        depth: int,
        *,
        stack: tuple[Node, ...],
        skeleton: _Skeleton | None = None,
    ) -> None:
        """Inline checks of the object in variable ``obj`` against ``node``; straight ones
        first when it has the keys of ``skeleton``, the usual shape of such objects."""
        if skeleton is not None and self._tried(node, obj, skeleton, segs, depth, stack=stack):
            self.emit(depth, "else:")
            depth += 1
        self.emit(depth, f"if {obj}.__class__ is not dict or not {obj}:")
        self.fail(depth + 1)
        keys = _ordered(node)
        if len(stack) > 1:  # inlined: rare keys send the object to the walker instead
            keys = [k for k in keys if not _cold(node.props[k])]
        elif node.resource:
            keys.append("resourceType")
        key, value = self.var("k"), self.var("v")
        choices = self._choices(node, keys, depth)
        walk = _Walk(node, value, segs, stack, choices, _hot(node), len(stack) == 1)
        self.emit(depth, f"for {key}, {value} in {obj}.items():")
        if len(keys) <= _CHAIN:
            self._chain(walk, key, keys, depth + 1)
        else:
            index = self.const("IDX", {k: j for j, k in enumerate(keys)})
            j = self.var("j")
            self.emit(depth + 1, f"{j} = {index}.get({key}, -1)")
            self.emit(depth + 1, f"if {j} < 0:")
            self.fail(depth + 2)
            self._tree(walk, j, list(enumerate(keys)), depth + 1)
        self._whole(node, obj, depth)

    def _choices(self, node: Node, keys: list[str], depth: int) -> dict[str, str]:
        """The variables remembering which type each choice element has taken; none for a
        choice with one type here (``valueString`` and ``_valueString`` agree)."""
        bases: dict[str, set[str]] = {}
        for k in keys:
            prop = node.props.get(k)
            if prop is not None and prop.choice:
                bases.setdefault(prop.element, set()).add(k.lstrip("_"))
        choices = {element: self.var("ch") for element, b in bases.items() if len(b) > 1}
        for var in choices.values():
            self.emit(depth, f"{var} = None")
        return choices

    def _whole(self, node: Node, obj: str, depth: int) -> None:
        """What is checked of the object as a whole: required elements, invariants."""
        for req in node.required:
            absent = " and ".join(f"{k!r} not in {obj}" for k in req.keys)
            self.emit(depth, f"if {absent}:")
            self.fail(depth + 1)
        self._invariants(node, obj, depth, None)

    def _invariants(self, node: Node, obj: str, depth: int, shape: tuple[str, ...] | None) -> None:
        """The node's invariants; one whose trigger key is not there holds without a call
        (``shape``: the keys, when known)."""
        for invariant in node.invariants:
            test = f"{self.const('I', invariant)}({obj})"
            trigger = TRIGGERS.get(invariant)
            if trigger is not None and shape is not None and trigger not in shape:
                continue
            if trigger is not None and shape is None:
                test = f"{trigger!r} in {obj} and {test}"
            self.emit(depth, f"if {test}:")
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

    def _key(self, walk: _Walk, key: str, depth: int, skeleton: _Skeleton | None = None) -> None:
        """The checks of the value of ``key``; ``skeleton``: its (items') usual shape."""
        prop = walk.node.props.get(key)
        if prop is None:  # resourceType
            self.emit(depth, "pass")
            return
        if prop.max == 0:
            self.fail(depth)
            return
        if prop.element in walk.choices:
            var, base = walk.choices[prop.element], key.lstrip("_")
            self.emit(depth, f"if {var} is not None and {var} != {base!r}:")
            self.fail(depth + 1)
            self.emit(depth, f"{var} = {base!r}")
        here = (repr("." + key), *walk.segs)
        implied = key in walk.node.implied
        stack = walk.stack if key in walk.hot else ()  # () : call, do not inline
        if not prop.array:
            self._value(
                prop,
                walk.value,
                here,
                depth,
                stack=stack,
                implied=implied,
                outer=walk.outer,
                skeleton=skeleton,
            )
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
            self._sliced(prop, prop.slicing, value, item_segs, depth=depth, walk=walk, stack=stack)
            return
        start = len(self.lines)
        self._value(
            prop,
            item,
            item_segs,
            depth + 1,
            stack=stack,
            implied=implied,
            outer=walk.outer,
            skeleton=skeleton,
        )
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
        outer: bool = False,
        skeleton: _Skeleton | None = None,
    ) -> None:
        """The checks of one value in ``var`` of ``prop``; findings go under ``segs``.

        ``implied``: the value's pattern is already proved by the slice matching. ``outer``:
        the value is a child of the function's own object, so it may be a shared one.
        ``skeleton``: the value's usual shape, if known.
        """
        node = prop.node
        if prop.kind is Kind.PRIMITIVE:
            self._primitive(prop, var, depth)
        elif prop.kind is Kind.COMPLEX and node is not None:
            if outer:
                depth = self._recalled(prop, var, segs, depth)
            if _inlinable(node, stack):
                self._object(node, var, segs, depth, stack=(*stack, node), skeleton=skeleton)
            else:
                self.paths.install(node)
                fresh = ", True" if outer else ""  # not shared: the callee need not look
                self.emit(depth, f"r = {self.const('C', node)}.check({var}, ctx{fresh})")
                self._merge(segs, depth)
        else:  # extensions, nested resources, a primitive's _name: the walker's own check
            self.emit(depth, f"r = VALUE({self.const('P', prop)}, {var}, ctx)")
            self._merge(segs, depth)
            return
        self._constraints(prop, var, segs, depth, implied)

    def _recalled(self, prop: Prop, var: str, segs: tuple[str, ...], depth: int) -> int:
        """A shared value's outcome as a value of ``prop`` is recalled: its own checks (the
        depth returned) run for unshared values only."""
        self.recalls = True
        key, check = self.const("P", prop), self.const("PC", self.paths.value_check(prop))
        self.emit(depth, f"m = mm.get(id({var}))")
        self.emit(depth, "if m is not None:")
        self.emit(depth + 1, f"if m.get({key}, 0) is not None:  # not known to be clean")
        self.emit(depth + 2, f"out = RECALL_INTO(m, {key}, {check}, {var}, out, {', '.join(segs)})")
        self.emit(depth + 2, "if out is FAILED:")
        self.fail(depth + 3)
        self.emit(depth, "else:")
        return depth + 1

    def _primitive(self, prop: Prop, var: str, depth: int) -> None:
        form = self.paths._primitives.form(prop.type)
        if form is not None:
            self._string(form, var, depth)
        elif prop.type == "boolean":
            self.emit(depth, f"if {var}.__class__ is not bool:")
            self.fail(depth + 1)
        elif prop.type == "decimal":  # a JSON number: the test of primitives._decimal
            self.emit(depth, f"if {var}.__class__ is not int and {var}.__class__ is not float:")
            self.fail(depth + 1)
        else:
            self.emit(depth, f"if {self.const('F', prop.prim)}({var}) is not None:")
            self.fail(depth + 1)

    def _string(self, form: StringForm, var: str, depth: int) -> None:
        """The check of a string type, spelled out (see primitives.StringForm): a string not
        seen before is checked in full, and remembered."""
        seen = self.const("S", form.seen)
        self.emit(depth, f"if {var}.__class__ is not str or {var} not in {seen}:")
        bad = f"{var}.__class__ is not str or not {var} or len({var}) > {MAX_STRING}"
        if form.match is not None:
            bad += f" or {self.const('RE', form.match)}({var}) is None"
        self.emit(depth + 1, f"if {bad}:")
        self.fail(depth + 2)
        self.emit(depth + 1, f"if len({var}) <= {MEMO_MAX_LEN} and len({seen}) < {MEMO_LIMIT}:")
        self.emit(depth + 2, f"{seen}.add({var})")

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
        stringy = self.paths._primitives.form(prop.type) is not None
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
        walk: _Walk,
        stack: tuple[Node, ...],
    ) -> None:
        """Items checked against the slice they match; then the slices' counts."""
        if any(s.min > 0 and not s.decidable for s in slicing.bounded):
            self.fail(depth)  # the walker reports the slice as not checkable
            return
        slices = slicing.slices
        order = self.const("SI", {s: k for k, s in enumerate(slices)})
        i, item = segs[0][4:-3], self.var("x")  # the index variable inside f"[{i}]"
        counts, k = self.var("cnt"), self.var("s")
        self.emit(depth, f"{counts} = [0] * {len(slices)}")
        self.emit(depth, f"for {i}, {item} in enumerate({value}):")
        shared = self._recall_slice(slicing, item, counts, segs, depth + 1) if walk.outer else None
        if slicing.exact is not None:
            at = self._lookup(slicing.exact, order, item, k, depth + 1)
        else:
            self.emit(depth + 1, f"{k} = {self.const('MATCH', slicing.match)}({item})")
            at = depth + 1
        self.emit(at, f"if {k} is None:")  # no slice: checked as the sliced element
        if slicing.closed:
            self.fail(at + 1)
        else:
            self._value(prop, item, segs, at + 1, stack=stack)
            self.emit(at + 1, "continue")
        if slicing.exact is None:
            self.emit(depth + 1, f"{k} = {order}[{k}]")
        self.emit(depth + 1, f"{counts}[{k}] += 1")
        if shared:
            self._inline_slices(slices, item, k, segs, depth + 1)
        self._in_slice(slices, item, k, depth + 1, shared)
        if shared:
            self.emit(depth + 1, "if m is not None:")
            self.emit(depth + 2, f"m[{shared}] = ({k}, KEEP(r))")
        self._merge(segs, depth + 1)
        self._counts(slicing, counts, depth)

    def _inline_slices(
        self, slices: tuple[Slice, ...], item: str, k: str, segs: tuple[str, ...], depth: int
    ) -> None:
        """An unshared item (``m`` None) of a slice whose check has learned the usual shapes
        of its items is checked here when it has one, as that check's branch for it would,
        without the call: a Variant's own components."""
        known = []
        for j, s in enumerate(slices):
            node = s.prop.node if _direct(s.prop) else None
            kept = [sk for sk in self.paths.kept(node) if _fits(node, sk[0])] if node else []
            if node is not None and kept:
                known.append((j, node, kept))
        if not known:
            return
        self.emit(depth, "if m is None:")
        for n, (j, node, kept) in enumerate(known):
            self.emit(depth + 1, f"{'if' if n == 0 else 'elif'} {k} == {j}:")
            for skeleton in kept:
                self._tried(node, item, skeleton, segs, depth + 2, stack=(node,))
                self.emit(depth + 3, "continue")

    def _in_slice(
        self, slices: tuple[Slice, ...], item: str, k: str, depth: int, shared: str | None
    ) -> None:
        """``r``: the item checked against the node of slice ``k``, or as a value of the
        slice; an unshared item (``m`` None) skips the recall at the node check's start."""
        fast = [s.prop.node if _direct(s.prop) else None for s in slices]
        for node in fast:
            if node is not None:
                self.paths.install(node)
        nodes, args = (
            self.const("SN", tuple(fast)),
            f"{item}, ctx, m is None" if shared else f"{item}, ctx",
        )
        if all(fast):
            self.emit(depth, f"r = {nodes}[{k}].check({args})")
            return
        n = self.var("n")
        self.emit(depth, f"{n} = {nodes}[{k}]")
        self.emit(depth, f"if {n} is not None:")
        self.emit(depth + 1, f"r = {n}.check({args})")
        self.emit(depth, "else:")
        props = self.const("SP", tuple(s.prop for s in slices))
        self.emit(depth + 1, f"r = VALUE({props}[{k}], {item}, ctx)")

    def _recall_slice(
        self, slicing: Slicing, item: str, counts: str, segs: tuple[str, ...], depth: int
    ) -> str:
        """A shared item's slice and outcome there are recalled, matching skipped; after
        the item's first check the caller keeps them in ``m``, under the name returned."""
        self.recalls = True
        key = self.const("SL", slicing)
        self.emit(depth, f"m = mm.get(id({item}))")
        self.emit(depth, f"if m is not None and {key} in m:")
        self.emit(depth + 1, f"s, kept = m[{key}]")
        self.emit(depth + 1, f"{counts}[s] += 1")
        self.emit(depth + 1, "if kept is not None:")
        self.emit(depth + 2, f"out = INTO(kept, out, {', '.join(segs)})")
        self.emit(depth + 2, "if out is FAILED:")
        self.fail(depth + 3)
        self.emit(depth + 1, "continue")
        return key

    def _lookup(self, exact: Exact, order: str, item: str, k: str, depth: int) -> int:
        """Inline slice matching: the first (system, code) found in the index decides.

        The first coding is tried straight away; only when it is not a known code (or the
        item is odd) are all codings scanned, with every type checked. Returns the depth
        inside that scan, where ``k`` may still be None.
        """
        index = self.const("EX", {key: self.namespace[order][s] for key, s in exact.index.items()})
        c = self.var("c")
        first = f"{item}[{exact.element!r}]" + ('["coding"][0]' if exact.concept else "")
        self.emit(depth, "try:")
        self.emit(depth + 1, f"{c} = {first}")
        self.emit(depth + 1, f'{k} = {index}.get(({c}["system"], {c}["code"]))')
        self.emit(depth, "except Exception:  # anything odd: the scan below decides")
        self.emit(depth + 1, f"{k} = None")
        self.emit(depth, f"if {k} is None:")
        self._scan(exact, index, item, k, depth + 1)
        return depth + 1

    def _scan(self, exact: Exact, index: str, item: str, k: str, depth: int) -> None:
        """Slice matching through every coding, in order."""
        codings, c = self.var("cl"), self.var("c")
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
        """The slices' cardinalities: one test per distinct bound, not one per slice (the
        Variant's components have some twenty slices of at most one)."""
        index = {s: k for k, s in enumerate(slicing.slices)}
        lows: dict[int, list[int]] = {}
        highs: dict[int, list[int]] = {}
        for s in slicing.bounded:
            if s.min:
                lows.setdefault(s.min, []).append(index[s])
            if s.max is not None:
                highs.setdefault(s.max, []).append(index[s])
        for bounds, least, sign in ((lows, "min", "<"), (highs, "max", ">")):
            for bound, at in bounds.items():
                if len(at) == 1:
                    self.emit(depth, f"if {counts}[{at[0]}] {sign} {bound}:")
                else:
                    pick = self.const("G", itemgetter(*at))
                    self.emit(depth, f"if {least}({pick}({counts})) {sign} {bound}:")
                self.fail(depth + 1)


#: the shape of an object: its keys, in order, and for each value the shape of the object
#: it holds (for an array, of its first item), or None
_Skeleton = tuple[tuple[str, ...], tuple["_Skeleton | None", ...]]
_SKELETON_DEPTH = 4


def _skeleton(value: Any, levels: int = _SKELETON_DEPTH) -> _Skeleton | None:
    """The shape of a JSON value (see _Skeleton), ``levels`` deep."""
    if type(value) is list and value:
        value = value[0]
    if type(value) is not dict or not value or levels == 0:
        return None
    return tuple(value), tuple(_skeleton(v, levels - 1) for v in value.values())


def _fits(node: Node, keys: tuple[str, ...]) -> bool:
    """Whether an object with exactly these keys can pass ``node`` with no key looked up:
    all allowed, every required element there, no choice element twice."""
    props = [node.props.get(k) for k in keys if not (node.resource and k == "resourceType")]
    if any(p is None or p.max == 0 for p in props):
        return False
    if any(not any(k in keys for k in req.keys) for req in node.required):
        return False
    chosen = [(p.element, p.key.lstrip("_")) for p in props if p is not None and p.choice]
    return len({element for element, _ in chosen}) == len(set(chosen))


@dataclass(frozen=True, slots=True)
class _Walk:
    """Where the generator is: the node, the value variable, the path, the inlined nodes."""

    node: Node
    value: str  # the variable holding the current property's value
    segs: tuple[str, ...]  # path segments from the object up to the function's own object
    stack: tuple[Node, ...]  # the nodes inlined so far; empty: children are called
    choices: dict[str, str]  # choice element -> the variable remembering the type taken
    hot: frozenset[str]  # keys whose small children are inlined
    outer: bool  # the object is the function's own: its children may be shared ones


def _is_dict(var: str) -> str:
    return f"{var}.__class__ is dict"


def _loop(i: str, item: str, values: str, counted: bool) -> str:
    if counted:
        return f"for {i}, {item} in enumerate({values}):"
    return f"for {item} in {values}:"


#: elements that most instances of their datatype carry, tried first
_COMMON = frozenset({"system", "code", "display", "coding", "text", "value", "unit", "reference"})


def _ordered(node: Node) -> list[str]:
    """The node's keys, likeliest first: required, common, constrained, other, rare, and
    last those not allowed at all.

    A choice narrowed to one type counts as common: a Variant component's value.
    """
    required = {k for req in node.required for k in req.keys}

    def rank(key: str) -> int:
        prop = node.props[key]
        if prop.max == 0:
            return 6
        if key.startswith("_"):
            return 5
        if key in required:
            return 0
        if key in _COMMON or (prop.choice and len(node.choices.get(prop.element[:-3], ())) == 1):
            return 1
        if prop.extra or prop.slicing is not None:
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
