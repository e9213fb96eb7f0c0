"""The conformance resources of the loaded FHIR packages, found by canonical URL.

Files are indexed once (the core package ships ``.index.json``; smaller packages are
scanned) and read only when first asked for, so startup does not parse the ~4,500 files
of the core package.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ..errors import PackageError

__all__ = ["CORE_BASE", "Definitions", "unversioned"]

#: canonical prefix of the base resource and datatype definitions
CORE_BASE = "http://hl7.org/fhir/StructureDefinition/"
_KINDS = frozenset({"StructureDefinition", "ValueSet", "CodeSystem"})


def unversioned(canonical: str) -> str:
    """``url|version`` → ``url``: the packages hold one version of each canonical."""
    return canonical.partition("|")[0]


class Definitions:
    """StructureDefinitions, ValueSets and CodeSystems of some packages, by canonical URL."""

    def __init__(self, package_dirs: Iterable[Path]) -> None:
        self._files: dict[tuple[str, str], Path] = {}
        self._loaded: dict[tuple[str, str], dict[str, Any] | None] = {}
        resources: set[str] = set()
        for folder in package_dirs:
            for entry, path, data in _index(folder):
                key = (entry["resourceType"], entry["url"])
                if key not in self._files:
                    self._files[key] = path
                    if data is not None:
                        self._loaded[key] = data
                if entry.get("kind") == "resource" and entry["url"] == CORE_BASE + entry["type"]:
                    resources.add(entry["type"])
        #: names of the resource types (Observation, Bundle, ...; also the abstract ones)
        self.resource_types = frozenset(resources)

    def get(self, kind: str, canonical: str) -> dict[str, Any] | None:
        """The resource of type ``kind`` with this canonical URL, or None."""
        key = (kind, unversioned(canonical))
        if key not in self._loaded:
            path = self._files.get(key)
            self._loaded[key] = None if path is None else _read(path)
        return self._loaded[key]

    def structure(self, canonical: str) -> dict[str, Any] | None:
        """A StructureDefinition by canonical URL."""
        return self.get("StructureDefinition", canonical)

    def urls(self, kind: str) -> list[str]:
        """Every canonical URL of this resource type."""
        return [url for k, url in self._files if k == kind]


def _read(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PackageError(f"cannot read {path}: {exc}; delete the package cache entry") from exc
    if not isinstance(data, dict):
        raise PackageError(f"{path} is not a FHIR resource; delete the package cache entry")
    return data


def _index(folder: Path) -> Iterator[tuple[dict[str, Any], Path, dict[str, Any] | None]]:
    """(index entry, file, the resource if it had to be read) per conformance resource.

    An entry has resourceType and url, and for StructureDefinitions kind and type. Packages
    without an ``.index.json`` are scanned, which reads the files anyway.
    """
    index = folder / ".index.json"
    if index.is_file():
        for entry in _read(index).get("files", []):
            if entry.get("resourceType") in _KINDS and entry.get("url"):
                yield entry, folder / entry["filename"], None
        return
    for path in sorted(folder.glob("*.json")):
        if path.name.split("-", 1)[0] in _KINDS:
            data = _read(path)
            if data.get("resourceType") in _KINDS and data.get("url"):
                yield data, path, data
