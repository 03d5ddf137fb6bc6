"""Prometheus metrics of the gRPC transport, registered beside REST's (served at the
REST listener's ``/metrics``): calls by RPC and canonical code, and their latency."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from disksnap.domain.errors import Code


@dataclass
class GrpcMetrics:
    requests: Counter
    seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> GrpcMetrics:
        registry = registry or CollectorRegistry()
        return cls(
            Counter(
                "disksnap_grpc_requests",
                "gRPC calls by RPC and canonical status code",
                ["method", "code"],
                registry=registry,
            ),
            Histogram(
                "disksnap_grpc_request_seconds",
                "gRPC call latency by RPC",
                ["method"],
                registry=registry,
            ),
        )

    def observe(self, method: str, code: Code, seconds: float) -> None:
        self.requests.labels(method, code.name).inc()
        self.seconds.labels(method).observe(seconds)
