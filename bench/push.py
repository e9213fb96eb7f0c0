"""Push throughput: a 10,000-variant report sent to sekmet-fhir and to HAPI FHIR over
loopback, with 1, 4 and 8 transactions in flight, side by side in one run.

Both servers are the test suite's own (``tests/fhir_servers.py``, ``tests/sekmet_server.py``),
started here on 127.0.0.1. Each push sends a report converted for a new patient, so every
entry is a create on every run. Reported per run: resources per second (wall), and the
adapter's own CPU time next to the wall time; a client whose CPU time is a small part of the
wall time is not what limits the throughput.

Usage: python bench/push.py [--variants N] [--servers sekmet,hapi] [--chunk 500]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from fhir_servers import HAPI_JVM_THROUGHPUT, Hapi, hapi_app, npm_tarball  # noqa: E402
from run import generate  # noqa: E402
from sekmet_server import Sekmet  # noqa: E402

from adapter.convert import ConvertOptions, OutputFormat, convert_vcf  # noqa: E402
from adapter.model import PatientRef  # noqa: E402
from adapter.packages import fetch_all  # noqa: E402
from adapter.sync.auth import StaticBearer  # noqa: E402
from adapter.sync.client import FhirClient  # noqa: E402
from adapter.sync.push import push_bundle, resolve_patient  # noqa: E402

MRN = "https://hospital.test/mrn"
CONCURRENCY = (1, 4, 8)
#: HAPI on H2 took more than the client's default 60 s to answer a 500-entry transaction of
#: conditional updates here (2026-11-22): a benchmark waits for the answer instead
READ_TIMEOUT_S = 900.0


def report(vcf: Path, folder: Path, value: str) -> dict[str, object]:
    out = folder / f"{value}.json"
    options = ConvertOptions(
        patient=PatientRef(identifier_system=MRN, identifier_value=value),
        issued=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        output_format=OutputFormat.TRANSACTION,
    )
    convert_vcf(vcf, out, options)
    bundle: dict[str, object] = orjson.loads(out.read_bytes())
    return bundle


async def push(
    base: str, auth: httpx.Auth | None, bundle: dict[str, object], value: str, *, chunk: int,
    concurrency: int,
) -> tuple[int, float, float]:  # fmt: skip
    """(entries, wall seconds, client CPU seconds) of one push."""
    timeout = httpx.Timeout(READ_TIMEOUT_S, connect=10.0)
    async with FhirClient(base, auth=auth, concurrency=concurrency, timeout=timeout) as client:
        patient = await resolve_patient(client, MRN, value)
        rewrite = {f"Patient?identifier={MRN}|{value}": patient}
        wall, cpu = time.perf_counter(), time.process_time()
        result = await push_bundle(
            client, bundle, max_entries=chunk, rewrite=rewrite, concurrency=concurrency
        )
        return result.entries, time.perf_counter() - wall, time.process_time() - cpu


def bench_server(
    name: str, base: str, token: str | None, vcf: Path, folder: Path, *, chunk: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    auth = StaticBearer(token) if token else None
    for concurrency in CONCURRENCY:
        value = f"BENCH-{uuid.uuid4()}"
        body = {"resourceType": "Patient", "identifier": [{"system": MRN, "value": value}]}
        created = httpx.post(f"{base}/Patient", json=body, headers=headers, timeout=60)
        created.raise_for_status()
        bundle = report(vcf, folder, value)
        entries, wall, cpu = asyncio.run(
            push(base, auth, bundle, value, chunk=chunk, concurrency=concurrency)
        )
        print(
            f"{name:7} {concurrency:>3} in flight  {entries:>6} resources  {wall:7.1f} s  "
            f"{entries / wall:8.0f} resources/s  client CPU {cpu:6.1f} s "
            f"({100 * cpu / wall:4.1f}% of wall)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=10_000)
    parser.add_argument("--servers", default="sekmet,hapi")
    parser.add_argument("--chunk", type=int, default=500, help="entries per transaction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
        folder = Path(tmp)
        vcf = folder / "report.vcf"
        generate(vcf, args.variants)
        print(f"{args.variants} records, {args.chunk} entries per transaction", flush=True)
        for name in args.servers.split(","):
            if name == "sekmet":
                (folder / "sekmet").mkdir()
                sekmet = Sekmet(folder / "sekmet")
                try:
                    bench_server(
                        name, sekmet.base, sekmet.bearer_token, vcf, folder, chunk=args.chunk
                    )
                finally:
                    sekmet.stop()
            elif name == "hapi":
                ig = fetch_all()["hl7.fhir.uv.genomics-reporting"]
                (folder / "hapi").mkdir()
                tarball = npm_tarball(ig, folder / "hapi")
                hapi = Hapi(hapi_app(), tarball, folder / "hapi", jvm=HAPI_JVM_THROUGHPUT)
                try:
                    bench_server(name, hapi.base, None, vcf, folder, chunk=args.chunk)
                finally:
                    hapi.stop()


if __name__ == "__main__":
    main()
