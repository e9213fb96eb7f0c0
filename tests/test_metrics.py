"""The Prometheus exposition: counters, histograms and scrape-time gauges, escaped labels."""

from __future__ import annotations

from adapter.metrics import Metrics


def _samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_counters_histograms_and_gauges_render_in_the_text_format() -> None:
    metrics = Metrics()
    metrics.count("fhir_genomics_retries_total", server="hapi")
    metrics.count("fhir_genomics_retries_total", 2, server="hapi")
    for seconds in (0.03, 0.3, 7.0, 500.0):
        metrics.observe("fhir_genomics_send_seconds", seconds, server="hapi")
    text = metrics.render({"fhir_genomics_jobs": {(("state", "pending"),): 4}})
    samples = _samples(text)
    assert "# TYPE fhir_genomics_send_seconds histogram" in text
    assert "# TYPE fhir_genomics_jobs gauge" in text
    assert samples['fhir_genomics_jobs{state="pending"}'] == 4
    assert samples['fhir_genomics_retries_total{server="hapi"}'] == 3
    buckets = {
        k: v for k, v in samples.items() if k.startswith("fhir_genomics_send_seconds_bucket")
    }
    assert buckets['fhir_genomics_send_seconds_bucket{server="hapi",le="0.05"}'] == 1
    assert buckets['fhir_genomics_send_seconds_bucket{server="hapi",le="0.5"}'] == 2
    assert buckets['fhir_genomics_send_seconds_bucket{server="hapi",le="10"}'] == 3
    assert buckets['fhir_genomics_send_seconds_bucket{server="hapi",le="+Inf"}'] == 4
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative
    assert samples['fhir_genomics_send_seconds_count{server="hapi"}'] == 4
    assert samples['fhir_genomics_send_seconds_sum{server="hapi"}'] == 507.33


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.count("fhir_genomics_retries_total", server='a"b\\c\nd')
    assert 'server="a\\"b\\\\c\\nd"' in metrics.render()
