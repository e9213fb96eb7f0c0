"""A throwaway PostgreSQL server for the outbox tests, from Debian's packages.

* :func:`postgres_bin`: the newest ``/usr/lib/postgresql/*/bin``; when there is none, the
  ``postgresql`` package is installed with apt-get (CI runs as root on a fresh machine).
* :class:`Postgres`: a cluster made by ``initdb`` in a temporary folder, trust authentication,
  listening on 127.0.0.1 on a free port with its unix socket in that folder, stopped and
  deleted by :meth:`Postgres.stop`. PostgreSQL refuses to run as root, so as root the cluster
  belongs to the ``postgres`` system user (the package creates it) and its commands run
  through ``runuser``; as anyone else they run as that user.
* :func:`new_database`: a fresh, empty database on that server, one per test.

A failed install or start fails the tests that need the server, with the tool's output:
nothing is skipped. The fixture is in the test module (``postgres_url``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from fhir_servers import free_port
from psycopg import sql

INSTALL = ("apt-get", "install", "-y", "--no-install-recommends", "postgresql")
SUPERUSER = "postgres"
DATABASE = "fhir_genomics"
START_TIMEOUT_S = 120
INSTALL_TIMEOUT_S = 900


def _run(argv: Sequence[str], what: str, cwd: Path) -> None:
    """``argv`` run in ``cwd`` (a folder the server's user may enter)."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=START_TIMEOUT_S, cwd=cwd, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{what} failed ({done.returncode}): {' '.join(argv)}\n{done.stdout}{done.stderr}",
            pytrace=False,
        )


def _installed() -> list[Path]:
    found = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    return sorted((p.parent for p in found), key=lambda p: int(p.parent.name))


def postgres_bin() -> Path:
    """The newest installed server's ``bin`` folder, installing the package when none is."""
    if not _installed():
        if os.geteuid() != 0:
            pytest.fail(f"PostgreSQL is not installed: run `sudo {' '.join(INSTALL)}`")
        env_apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (("apt-get", "update"), INSTALL):
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
                env=env_apt,
            )
            if done.returncode != 0:
                pytest.fail(f"{' '.join(argv)} failed:\n{(done.stdout + done.stderr)[-6000:]}")
    if not _installed():
        pytest.fail(f"{' '.join(INSTALL)} installed no /usr/lib/postgresql/*/bin/initdb")
    return _installed()[-1]


class Postgres:
    """A running cluster; :attr:`url` names its database ``fhir_genomics``."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._as_owner = self._owner_prefix()
        self.folder = Path(tempfile.mkdtemp(prefix="fhir-genomics-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        self.admin_url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        self.url = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"
        try:
            self._start()
            new_database(self.admin_url, DATABASE)
        except BaseException:
            self.stop()
            raise

    def _owner_prefix(self) -> list[str]:
        """Root runs the server's commands as the ``postgres`` user; anyone else as itself."""
        if os.geteuid() != 0:
            return []
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.fail("runuser (util-linux) is needed to run PostgreSQL as root's tests")
        return [runuser, "-u", SUPERUSER, "--"]

    def _start(self) -> None:
        if self._as_owner:
            shutil.chown(self.folder, user=SUPERUSER, group=SUPERUSER)
        initdb = [str(self._bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER]
        initdb += ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"]
        _run([*self._as_owner, *initdb], "initdb", self.folder)
        options = f"-c listen_addresses=127.0.0.1 -c port={self.port} -c fsync=off"
        options += f" -c unix_socket_directories={self.folder}"
        pg_ctl = [str(self._bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        start = [*pg_ctl, "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"]
        done = subprocess.run(
            [*self._as_owner, *start],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S + 30,
            cwd=self.folder,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"PostgreSQL did not start:\n{done.stdout}{done.stderr}\n{self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text("utf-8", errors="replace")[-6000:] if self.log.is_file() else ""

    def stop(self) -> None:
        """Fast shutdown (the sessions are ended), then the folder is deleted."""
        if (self.data / "postmaster.pid").is_file():
            pg_ctl = [str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w"]
            _run([*self._as_owner, *pg_ctl, "stop"], "pg_ctl stop", self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)


def new_database(url: str, name: str | None = None) -> str:
    """A new, empty database on the server of ``url``; its URL."""
    name = name or f"test_{uuid.uuid4().hex}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.rpartition("/")[0] + f"/{name}"
