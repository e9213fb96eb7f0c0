"""Operational metrics in the Prometheus text format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/), for ``GET /metrics``.

Counters and latency histograms live in one :class:`Metrics` per process; gauges that mirror
stored state (jobs by state) are read from their source at each scrape, so they are never
stale. Labels carry server names and job states only: no identifier, nothing of a patient.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

__all__ = ["Labels", "Metrics"]

#: seconds; a FHIR transaction of a few hundred entries takes from tens of ms to tens of s
BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
Labels = tuple[tuple[str, str], ...]

HELP: Final = {
    "fhir_genomics_jobs": ("gauge", "Outbox jobs by state."),
    "fhir_genomics_retries_total": ("counter", "Requests sent again after a transient failure."),
    "fhir_genomics_job_retries_total": ("counter", "Jobs rescheduled after a failed send."),
    "fhir_genomics_sent_resources_total": ("counter", "Resources a server accepted."),
    "fhir_genomics_send_seconds": ("histogram", "Time to send one Bundle, retries included."),
}


class Metrics:
    """Thread-safe counters and histograms, rendered with gauges supplied at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], list[float]] = {}

    def count(self, name: str, by: float = 1.0, **labels: str) -> None:
        key = (name, _labels(labels))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + by

    def observe(self, name: str, seconds: float, **labels: str) -> None:
        """One observation: bucket counts, then the sum and the count."""
        key = (name, _labels(labels))
        with self._lock:
            cells = self._histograms.setdefault(key, [0.0] * (len(BUCKETS) + 3))
            cells[bisect.bisect_left(BUCKETS, seconds)] += 1
            cells[-2] += seconds  # buckets, +Inf, then sum and count
            cells[-1] += 1

    def render(self, gauges: Mapping[str, Mapping[Labels, float]] | None = None) -> str:
        with self._lock:
            counters = dict(self._counters)
            histograms = {k: list(v) for k, v in self._histograms.items()}
        lines: list[str] = []
        for name, values in sorted((gauges or {}).items()):
            lines += _family(name, ((name, labels, v) for labels, v in sorted(values.items())))
        for name in sorted({n for n, _ in counters}):
            rows = sorted((n, labels, v) for (n, labels), v in counters.items() if n == name)
            lines += _family(name, rows)
        for name in sorted({n for n, _ in histograms}):
            rows = [
                row
                for (n, labels), cells in sorted(histograms.items())
                if n == name
                for row in _histogram_rows(name, labels, cells)
            ]
            lines += _family(name, rows)
        return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _family(name: str, rows: Iterable[tuple[str, Labels, float]]) -> list[str]:
    kind, text = HELP.get(name, ("untyped", name))
    head = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    return head + [f"{n}{_label_text(labels)} {_number(v)}" for n, labels, v in rows]


def _histogram_rows(
    name: str, labels: Labels, cells: list[float]
) -> Iterator[tuple[str, Labels, float]]:
    running = 0.0
    for bound, count in zip((*BUCKETS, float("inf")), cells[:-2], strict=True):
        running += count
        le = "+Inf" if bound == float("inf") else _number(bound)
        yield f"{name}_bucket", (*labels, ("le", le)), running
    yield f"{name}_sum", labels, cells[-2]
    yield f"{name}_count", labels, cells[-1]


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escaped(v)}"' for k, v in labels) + "}"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)
