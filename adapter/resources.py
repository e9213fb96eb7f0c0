"""Where the adapter's declarative data lives: ``mappings/`` and ``profiles/``.

They sit beside the package in a source checkout (and an editable install), and under
``<prefix>/share/fhir-genomics-adapter/`` when installed from a wheel. The environment
variable ``FHIR_GENOMICS_DATA`` points at another folder that holds both.
"""

from __future__ import annotations

import csv
import os
import sys
from functools import cache
from pathlib import Path

from .errors import PackageError

__all__ = ["data_dir", "mapping_rows"]

_SHARE = Path("share") / "fhir-genomics-adapter"


@cache
def data_dir(name: str) -> Path:
    """The folder ``name`` ("mappings" or "profiles"), found once per process."""
    candidates = []
    if env := os.environ.get("FHIR_GENOMICS_DATA"):
        candidates.append(Path(env) / name)
    candidates.append(Path(__file__).resolve().parent.parent / name)
    candidates.append(Path(sys.prefix) / _SHARE / name)
    for path in candidates:
        if path.is_dir():
            return path
    raise PackageError(
        f"data folder {name!r} not found (looked in {', '.join(map(str, candidates))}); "
        "set FHIR_GENOMICS_DATA to the folder holding mappings/ and profiles/"
    )


def mapping_rows(name: str) -> list[dict[str, str]]:
    """Rows of the ``mappings/`` CSV ``name``, its ``#`` comment lines (sources) skipped."""
    path = data_dir("mappings") / name
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(line for line in f if not line.startswith("#")))
    except OSError as e:
        raise PackageError(f"cannot read code table {path}: {e}") from e
