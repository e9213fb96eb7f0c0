"""sekmet-fhir (the pinned PyPI package, a FHIR R4 server in Python) for the sync tests.

* :class:`Sekmet`: ``sekmet serve`` on a free 127.0.0.1 port with its settings, database and
  keys in a private folder, so nothing is written in the project. Inbound authentication is
  SMART Backend Services (its token endpoint at ``/auth/token``, discovered from
  ``/fhir/.well-known/smart-configuration``) or one static bearer token.

sekmet reads its SMART clients from its settings at start: :meth:`Sekmet.register` rewrites
them and restarts the server on the same port and database. A server that does not answer
``/fhir/metadata`` fails the tests that need it with its output: nothing is skipped.
"""

from __future__ import annotations

import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml
from fhir_servers import free_port, launch, stop_process

SEKMET = Path(sys.executable).with_name("sekmet")
START_TIMEOUT_S = 60


class Sekmet:
    """A running sekmet; its data are in ``folder/data``, so a restart keeps them."""

    def __init__(self, folder: Path) -> None:
        if not SEKMET.is_file():
            pytest.fail(f"{SEKMET} is missing: install the test extra (sekmet-fhir)")
        self.folder = folder
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base = f"{self.root}/fhir"
        self.token_url = f"{self.root}/auth/token"
        self.bearer_token = secrets.token_urlsafe(32)  # accepted beside SMART tokens
        self.log = folder / "server.log"
        self._settings = folder / "settings.yaml"
        self._clients: dict[str, dict[str, Any]] = {}
        self._process = self._start()

    def register(self, clients: Mapping[str, dict[str, Any]], scopes: str = "system/*.*") -> None:
        """SMART clients, each authenticated by a key of its JWKS (by client id), allowed
        ``scopes``; one restart for all."""
        for client_id, jwks in clients.items():
            self._clients[client_id] = {"client_id": client_id, "jwks": jwks, "scopes": scopes}
        self.restart()

    def revoke_tokens(self) -> None:
        """Every access token issued so far refused from now on: sekmet signs its tokens with a
        secret kept in its database, and makes a new one when it finds none."""
        with closing(sqlite3.connect(self.folder / "data" / "sekmet.db", timeout=30)) as db:
            db.execute("DELETE FROM kv WHERE k = 'jwt_secret'")
            db.commit()

    def _write_settings(self) -> None:
        settings = {
            "base_url": self.base,
            "host": "127.0.0.1",
            "port": self.port,
            "data_dir": str(self.folder / "data"),
            "own_private_key_path": str(self.folder / "keys" / "sekmet.pem"),
            "simulator": {"enabled": False},  # no automatic answers to orders
            "server_auth": {
                "types": ["smart", "bearer"],
                "tokens": [self.bearer_token],
                "smart_clients": list(self._clients.values()),
            },
        }
        self._settings.write_text(yaml.safe_dump(settings), encoding="utf-8")

    def _start(self) -> subprocess.Popen[bytes]:
        """Ready once ``/fhir/metadata`` (open to all, as FHIR requires) answers 200."""
        self._write_settings()
        argv = [str(SEKMET), "serve", "--config", str(self._settings)]
        ready = f"{self.base}/metadata"
        return launch(
            "sekmet", argv, self.folder, log=self.log, ready=ready, timeout=START_TIMEOUT_S
        )

    def restart(self) -> None:
        """Stopped and started again with the current settings, same port and data."""
        stop_process(self._process)
        self._process = self._start()

    def stop(self) -> None:
        stop_process(self._process)
