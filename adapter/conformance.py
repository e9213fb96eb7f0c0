"""Conformance during a conversion: each resource checked against its profile before it is
written; the first error aborts the conversion, and nothing is written.

Variants are checked by shape (:class:`VariantChecks`), the other resources whole
(:func:`checker`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .errors import ValidationFailed, ValidationIssue
from .fhir.codes import profile
from .fhir.identifiers import identifier
from .fhir.templates import Kind
from .fhir.variant import Note, Shape, VariantBuilder
from .fhir.writers import ReferenceList
from .model import ConversionSummary
from .validation import Validator

__all__ = ["Check", "VariantChecks", "checker", "sharing", "variant_checks"]

Check = Callable[[dict[str, Any]], None]
_MAX_ISSUES = 50
_ENDS = 2
_PARTS_KEPT = 65_536  # valid parts remembered (most values recur: bases, depths, codes)
_RECALL_TRIAL = 4096  # parts of a kind looked up before its recall is judged
_RECALL_WORTH = 8  # a kind stays looked up while at least one in this many is found


def checker(validator: Validator, summary: ConversionSummary) -> Check:
    """A whole-resource check that fails the conversion on the first invalid resource."""

    def check(resource: dict[str, Any]) -> None:
        issues = [i for i in validator.validate(_briefly(resource)) if i.severity == "error"]
        if issues:
            summary.validation_errors += len(issues)
            raise ValidationFailed(
                f"{resource.get('resourceType')} failed validation against its profile; "
                "nothing was written",
                issues=_prefixed(resource, issues[:_MAX_ISSUES]),
            )

    return check


def _briefly(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with a long :class:`ReferenceList` ``result`` cut to its ends.

    Its references are all one prefix and a UUID written the same way, so they are all
    valid or all not, and a million-variant report is not checked a million times.
    """
    results = resource.get("result")
    if not isinstance(results, ReferenceList) or len(results) <= _ENDS:
        return resource
    return {**resource, "result": [results[0], results[-1]]}


def _prefixed(resource: dict[str, Any], issues: list[ValidationIssue]) -> list[ValidationIssue]:
    """Name the failing resource by its business identifier in each issue."""
    ident = (resource.get("identifier") or [{}])[0].get("value", "?")
    return [
        ValidationIssue(i.severity, i.path, f"{i.message} (resource {ident})", i.profile)
        for i in issues
    ]


def sharing(validator: Validator | None) -> AbstractContextManager[Callable[[Any], Any]]:
    """The validator's sharing block (see :meth:`Validator.sharing`), or a no-op."""
    if validator is None:
        return nullcontext(lambda value: value)
    return validator.sharing()


def variant_checks(
    validator: Validator | None, builder: VariantBuilder, summary: ConversionSummary
) -> VariantChecks | None:
    """The variant checks of a conversion that validates, else None."""
    if validator is None:
        return None
    return VariantChecks(validator, builder, checker(validator, summary))


class VariantChecks:
    """Checks Variant Observations as the builder describes them before encoding
    (:meth:`VariantBuilder.encoding`'s ``inspect``).

    The first Observation of each shape is checked whole. A later one of that shape has the
    same elements, the same components with the same codes, so the same slices, counts and
    invariants; it differs only in its id and in its components' values. So only those are
    checked, each in place (:meth:`Validator.part_checker`), and a part (kind and values)
    found valid once is not checked again. On any error the whole Observation is checked,
    so that the error reads as it would have.
    """

    def __init__(self, validator: Validator, builder: VariantBuilder, check: Check) -> None:
        self.builder = builder
        self.check = check
        self.parts = {
            element: validator.part_checker(profile("variant"), element)
            for element in ("id", "identifier", "component")
        }
        self.shapes: set[Shape] = set()
        self.valid: set[tuple[Kind, tuple[Any, ...]]] = set()
        #: per shape, its valued kinds and where their values are
        self.valued: dict[Shape, tuple[tuple[Kind, int, int], ...]] = {}
        #: per kind, [parts looked up in ``valid``, found there]: kinds whose values hardly
        #: recur (positions, HGVS) stop being looked up
        self.recall: dict[Kind, list[int]] = {}

    def __call__(self, rid: str, shape: Shape, values: list[Any], notes: list[Note]) -> None:
        if notes or shape not in self.shapes or not self._parts_valid(rid, shape, values):
            self.check(self.builder.observation(rid, shape, values, notes))
            if not notes:
                self.shapes.add(shape)

    def _parts_valid(self, rid: str, shape: Shape, values: list[Any]) -> bool:
        """Whether the id, the identifier and each valued component are valid in place."""
        if not self._valid("id", rid) or not self._valid("identifier", identifier(rid)):
            return False
        valued = self.valued.get(shape)
        if valued is None:
            valued = self.valued[shape] = _valued(shape)
        for kind, start, end in valued:
            key = (kind, tuple(values[start:end]))
            recall = self.recall.get(kind) or self.recall.setdefault(kind, [0, 0])
            remembered = recall[0] < _RECALL_TRIAL or recall[1] * _RECALL_WORTH >= recall[0]
            if remembered:
                recall[0] += 1
                if key in self.valid:
                    recall[1] += 1
                    continue
            if not self._valid("component", kind.make(*key[1])):
                return False
            if remembered:
                if len(self.valid) >= _PARTS_KEPT:
                    self.valid.clear()
                self.valid.add(key)
        return True

    def _valid(self, element: str, value: Any) -> bool:
        return all(issue.severity != "error" for issue in self.parts[element](value))


def _valued(shape: Shape) -> tuple[tuple[Kind, int, int], ...]:
    """The kinds of a shape that take values, with the range of their values."""
    found, start = [], 0
    for kind in shape:
        if kind.arity:
            found.append((kind, start, start + kind.arity))
        start += kind.arity
    return tuple(found)
