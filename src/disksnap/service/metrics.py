"""Service gauges for Prometheus, read from the metadata at scrape time: operations by
kind and state, and the bytes all snapshots store."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from disksnap.service.core import Env


class ServiceCollector(Collector):
    def __init__(self, env: Env) -> None:
        self.env = env

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.env.meta.transaction(readonly=True) as tx:
            counts = tx.operations.counts()
            stored = tx.snapshots.total_storage()
        ops = GaugeMetricFamily(
            "disksnap_operations", "Operations by kind and state", labels=["kind", "state"]
        )
        for (kind, state), n in sorted(counts.items()):
            ops.add_metric([kind, state], n)
        yield ops
        yield GaugeMetricFamily(
            "disksnap_snapshot_stored_bytes", "Bytes stored by all snapshots", value=stored
        )
