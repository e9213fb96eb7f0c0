"""MLLP throughput: 20-variant ORU^R01 messages taken end to end (framed, read, converted,
validated, committed to a SQLite outbox, acknowledged) over one connection, over 8 concurrent
connections, and over 8 with 2 worker processes converting (``mllp --workers 2``), side by
side in one run.

The messages follow the somatic example (``examples/hl7v2/somatic-tumor.hl7``): its header,
PID, ORC, OBR and report-level OBX, then 20 variant groups made from its first one (EGFR SNVs
at distinct positions, each with c. and g.HGVS, chromosome, start-end, REF, ALT, genomic
reference sequence, VAF and read depth), and its SPM. Every message has its own filler order
number and control ID, so each is a new job. Each connection sends one message at a time and
waits for its ACK, as an interface engine does. Clients and listener share this process (the
clients only frame bytes); the outbox is a fresh SQLite file per run. One message per
connection is sent first, uncounted, to load the validator and the mapping tables.

Reported per run: messages, wall seconds, messages per second, and the CPU seconds of the
listener's process (not of its worker processes).

Then the other way, HL7 v2 out on sync: each run's queued jobs are sent by the outbox's worker
(:class:`adapter.sync.Sender`) to an ``mllp://`` server, each decided by the policy, read back
from its Bundle, written as an ORU^R01 and sent over a connection of its own, one job at a
time. The jobs of the first run go to a receiver that only acknowledges (the sender's own cost),
those of the second to our MLLP listener taking each into an outbox of its own (a receiver
doing real work), side by side. Reported: jobs, wall seconds, jobs per second, CPU seconds of
the process (sender and receiver).

Usage: python bench/mllp.py [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hl7.mllp import start_hl7_server

from adapter.intake import Intake, Reading
from adapter.mllp import MllpListener
from adapter.readers.hl7v2 import acknowledgement, read_header
from adapter.sync import Hl7v2Settings, Sender, ServerConfig
from adapter.sync.outbox import JobState, Outbox, open_outbox
from adapter.sync.worker import send_request

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "hl7v2" / "somatic-tumor.hl7"
#: the example's PID-3.4 is a namespace ID the deployment maps
AUTHORITIES = {"HOSP": "https://hospital.example.org/mrn"}
VARIANTS = 20
#: (connections, worker processes) of each run
RUNS = ((1, 1), (8, 1), (8, 2))
#: OBX-3 of the example's p.HGVS: a synthetic variant has none
AMINO_ACID_CHANGE = "48005-3"
START, END = b"\x0b", b"\x1c\r"


def message_pattern() -> tuple[list[str], list[list[str]], list[str]]:
    """The example's segments before its variants, its first variant's OBX (as fields), and
    its segments after the variants."""
    segments = EXAMPLE.read_bytes().decode("utf-8").rstrip("\r").split("\r")
    fields = [s.split("|") for s in segments]
    variant = [i for i, f in enumerate(fields) if f[0] == "OBX" and f[4]]
    first = [f for f in fields if f[0] == "OBX" and f[4] == "1" and _code(f) != AMINO_ACID_CHANGE]
    return segments[: variant[0]], first, segments[variant[-1] + 1 :]


def variant_values(k: int, rng: random.Random) -> dict[str, str]:
    """OBX-5 of the fields that differ between the synthetic variants, by OBX-3 code."""
    position = 55_191_822 + 37 * k
    ref, alt = rng.sample("ACGT", 2)
    return {
        "48004-6": f"NM_005228.4:c.{2573 + 37 * k}{ref}>{alt}^^HGVS.c",
        "81290-9": f"NC_000007.14:g.{position}{ref}>{alt}^^HGVS.g",
        "81254-5": f"{position}^{position}",
        "69547-8": ref,
        "69551-0": alt,
        "81258-6": f"{rng.uniform(0.05, 0.6):.2f}",
        "82121-5": str(rng.randint(8, 400)),
    }


def generate(n: int, run: str, seed: int = 20261122) -> list[bytes]:
    """``n`` messages of 20 variants, each its own order (filler number) and control ID."""
    head, first, tail = message_pattern()
    rng = random.Random(seed)
    messages = []
    for i in range(n):
        segments = list(head)
        for k in range(1, VARIANTS + 1):
            values = variant_values(k, rng)
            for fields in first:
                copy = [*fields]
                copy[4] = str(k)
                copy[5] = values.get(_code(copy), copy[5])
                segments.append("|".join(copy))
        numbered = _renumbered(segments + tail)
        text = "\r".join(numbered) + "\r"
        text = text.replace("SOM-5521", f"BENCH-{run}-{i:06d}")
        text = text.replace("SOM-20250703-0007", f"B{run}-{i:06d}")
        messages.append(text.encode("utf-8"))
    return messages


def _code(obx: list[str]) -> str:
    """OBX-3's code."""
    return obx[3].split("^")[0]


def _renumbered(segments: list[str]) -> list[str]:
    """OBX-1 set IDs 1, 2, 3... in order."""
    set_id = itertools.count(1)
    return [
        "|".join(("OBX", str(next(set_id)), *s.split("|")[2:])) if s.startswith("OBX|") else s
        for s in segments
    ]


async def send_all(port: int, messages: list[bytes]) -> list[bytes]:
    """The ACKs of ``messages`` sent one at a time over one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acks = []
    try:
        for message in messages:
            writer.write(START + message + END)
            await writer.drain()
            acks.append(await reader.readuntil(END))
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


async def bench(
    intake: Intake, messages: list[bytes], connections: int, workers: int
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for ``messages`` over ``connections`` connections, after
    one uncounted message per connection."""
    listener = MllpListener(intake, workers=workers)
    port = await listener.start("127.0.0.1", 0)
    try:
        warm, counted = messages[:connections], messages[connections:]
        await asyncio.gather(*(send_all(port, [m]) for m in warm))
        shares = [counted[c::connections] for c in range(connections)]
        wall, cpu = time.perf_counter(), time.process_time()
        answered = await asyncio.gather(*(send_all(port, share) for share in shares))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await listener.stop()
    acks = [ack for share in answered for ack in share]
    refused = [ack for ack in acks if b"\rMSA|AA|" not in ack]
    if len(acks) != len(counted) or refused:
        raise SystemExit(f"{len(refused)} of {len(acks)} messages not accepted: {refused[:1]!r}")
    return wall, cpu


async def acknowledge_only(reader: Any, writer: Any) -> None:
    """A receiver answering AA to every frame, and doing nothing else."""
    try:
        while True:
            header = read_header(await reader.readblock())
            ack = acknowledgement(header, "AA", control_id="BENCH", now=datetime.now(UTC))
            writer.writeblock(ack.encode("ascii"))
            await writer.drain()
    except asyncio.IncompleteReadError:
        writer.close()


async def send_jobs(
    outbox: Outbox, receiver: MllpListener | None, audit: Path
) -> tuple[int, float, float]:
    """(jobs sent, wall seconds, CPU seconds) draining ``outbox`` to an MLLP server: our
    ``receiver``, or an acknowledge-only one when None."""
    if receiver is None:
        server = await start_hl7_server(acknowledge_only, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
    else:
        port = await receiver.start("127.0.0.1", 0)
    config = ServerConfig(
        "bench", f"mllp://127.0.0.1:{port}", hl7v2=Hl7v2Settings(authorities=AUTHORITIES)
    )
    sender = Sender(outbox, {"bench": config}, audit_log=audit)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        done = await sender.drain()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if receiver is None:
            server.close()
            await server.wait_closed()
        else:
            await receiver.stop()
    failed = [d for d in done if d.state is not JobState.SENT]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(done)} jobs not sent: {failed[0].last_error}")
    return len(done), wall, cpu


def send_runs(tmp: str) -> None:
    """The queued jobs of the runs sent as ORU^R01, to each kind of receiver."""
    # the single-process runs' jobs: the first run's to one receiver, the second's to the other
    for (connections, workers), kind in (
        (RUNS[0], "acknowledge-only"),
        (RUNS[1], "our MLLP listener"),
    ):
        with (
            open_outbox(f"sqlite:///{tmp}/outbox-{connections}-{workers}.db") as outbox,
            open_outbox(f"sqlite:///{tmp}/received-{connections}-{workers}.db") as received,
        ):
            receiver = None
            if kind != "acknowledge-only":
                intake = Intake(
                    received, "ehr", send_request(purpose="TREAT"), Reading(AUTHORITIES)
                )
                receiver = MllpListener(intake)
            jobs, wall, cpu = asyncio.run(send_jobs(outbox, receiver, Path(tmp) / "audit.ndjson"))
        print(
            f"sync to {kind:<18} {jobs:>6} jobs  {wall:7.2f} s  {jobs / wall:7.1f} jobs/s  "
            f"CPU {cpu:6.2f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500, help="counted, per run")
    args = parser.parse_args()
    size = len(generate(1, "size")[0])
    print(f"{args.messages} messages of {VARIANTS} variants ({size:,} bytes) per run", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-mllp-") as tmp:
        for connections, workers in RUNS:
            messages = generate(args.messages + connections, f"{connections}C{workers}W")
            with open_outbox(f"sqlite:///{tmp}/outbox-{connections}-{workers}.db") as outbox:
                request = send_request(purpose="TREAT")
                intake = Intake(outbox, "bench", request, Reading(AUTHORITIES))
                wall, cpu = asyncio.run(bench(intake, messages, connections, workers))
                jobs = sum(outbox.counts().values())
            print(
                f"{connections:>2} connection(s), {workers} process(es)  {args.messages:>6} "
                f"messages  {wall:7.2f} s  {args.messages / wall:7.1f} messages/s  "
                f"CPU {cpu:6.2f} s  "
                f"({jobs} jobs in the outbox)",
                flush=True,
            )
        send_runs(tmp)


if __name__ == "__main__":
    main()
