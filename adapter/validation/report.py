"""Loading the process-wide validator, and validating files of resources."""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import InputError, ValidationIssue
from ..packages import fetch_all
from .definitions import Definitions
from .validator import IG_CANONICAL, Validator

__all__ = ["ValidationReport", "load_validator", "validate_path"]

_NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
_lock = threading.Lock()
_validator: Validator | None = None


def load_validator() -> Validator:
    """The process-wide validator: pinned packages loaded, the IG's definitions compiled."""
    global _validator  # noqa: PLW0603 - one validator per process, built on first use
    with _lock:
        if _validator is None:
            packages = fetch_all()
            validator = Validator(Definitions(packages.values()))
            validator._compile_all(IG_CANONICAL)  # the IG's profiles: compiled up front
            _validator = validator
        return _validator


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of validating one file."""

    source: str
    issues: tuple[ValidationIssue, ...]
    resources_checked: int

    @property
    def errors(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ValidationIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors


def validate_path(path: Path | str, *, validator: Validator | None = None) -> ValidationReport:
    """Validate a JSON resource or Bundle, or an NDJSON file of resources (``.gz`` too).

    NDJSON issues name their line as ``line N: <path>``; a line that is not JSON is an error.
    """
    path = Path(path)
    checker = validator or load_validator()
    text = _read(path)
    if Path(path.name.removesuffix(".gz")).suffix in _NDJSON_SUFFIXES:
        return _ndjson(path, text, checker)
    try:
        resource = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if _first_line_is_a_resource(text):  # NDJSON by another name
            return _ndjson(path, text, checker)
        return _unparsable(path, f"not JSON: {exc}")
    if type(resource) is not dict:
        return _unparsable(path, "not a FHIR resource (a JSON object)")
    return ValidationReport(str(path), tuple(checker.validate(resource)), _count(resource))


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read: {exc}", source=str(path)) from exc


def _ndjson(path: Path, text: bytes, checker: Validator) -> ValidationReport:
    issues: list[ValidationIssue] = []
    count = 0
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            resource = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            issues.append(ValidationIssue("error", f"line {number}", f"not JSON: {exc}"))
            continue
        if type(resource) is not dict:
            issues.append(ValidationIssue("error", f"line {number}", "not a JSON object"))
            continue
        count += _count(resource)
        issues.extend(
            ValidationIssue(i.severity, f"line {number}: {i.path}", i.message, i.profile)
            for i in checker.validate(resource)
        )
    return ValidationReport(str(path), tuple(issues), count)


def _first_line_is_a_resource(text: bytes) -> bool:
    try:
        return type(orjson.loads(text.lstrip().split(b"\n", 1)[0])) is dict
    except orjson.JSONDecodeError:
        return False


def _unparsable(path: Path, message: str) -> ValidationReport:
    return ValidationReport(str(path), (ValidationIssue("error", path.name, message),), 0)


def _count(resource: dict[str, Any]) -> int:
    """Resources in a resource: itself, and a Bundle's entries recursively."""
    entries = resource.get("entry") if resource.get("resourceType") == "Bundle" else None
    if type(entries) is not list:
        return 1
    nested = (e.get("resource") for e in entries if type(e) is dict)
    return 1 + sum(_count(r) for r in nested if type(r) is dict)
