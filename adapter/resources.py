"""Where the adapter's declarative data lives: ``mappings/`` and ``profiles/``.

They sit beside the package in a source checkout (and an editable install), and under
``<prefix>/share/fhir-genomics-adapter/`` when installed from a wheel. The environment
variable ``FHIR_GENOMICS_DATA`` points at another folder that holds both.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from .errors import PackageError

__all__ = ["data_dir"]

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
