"""Prometheus metrics: each transport's calls (``CallMetrics``), and service gauges read
from the metadata at scrape time (operations by kind and state, the bytes all snapshots
store)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from disksnap.domain.errors import Code
from disksnap.service.core import Env


@dataclass
class CallMetrics:
    """One transport's calls by RPC and canonical status code, and their latency:
    ``disksnap_<transport>_requests`` and ``disksnap_<transport>_request_seconds``."""

    registry: CollectorRegistry
    requests: Counter
    seconds: Histogram
    # Each labelled child once: ``labels()`` validates and locks on every call.
    _children: dict[tuple[str, Code], tuple[Counter, Histogram]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def create(
        cls, transport: str, call: str, registry: CollectorRegistry | None = None
    ) -> CallMetrics:
        """``call`` names one call in the help texts (``REST request``, ``gRPC call``)."""
        registry = registry or CollectorRegistry()
        return cls(
            registry,
            Counter(
                f"disksnap_{transport}_requests",
                f"{call}s by RPC and canonical status code",
                ["method", "code"],
                registry=registry,
            ),
            Histogram(
                f"disksnap_{transport}_request_seconds",
                f"{call} latency by RPC",
                ["method"],
                registry=registry,
            ),
        )

    def observe(self, method: str, code: Code, seconds: float) -> None:
        children = self._children.get((method, code))
        if children is None:
            children = self.requests.labels(method, code.name), self.seconds.labels(method)
            self._children[method, code] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)


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
