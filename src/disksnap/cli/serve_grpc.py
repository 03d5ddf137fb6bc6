"""The gRPC options of ``disksnap serve`` and the listener they configure (docs/grpc.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prometheus_client import CollectorRegistry

from disksnap.api.grpc.listener import GeneratedTls, GivenTls, GrpcListener, Plaintext, Security
from disksnap.api.grpc.tls import server_names
from disksnap.domain.clock import Clock
from disksnap.service.context import Dispatcher
from disksnap.service.metrics import CallMetrics
from disksnap.service.pools import CallPools
from disksnap.service.readcache import ReadCache


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--grpc-port",
        type=int,
        default=9090,
        help="gRPC port, TLS unless --grpc-plaintext (default 9090; 0 picks a free port)",
    )
    p.add_argument(
        "--grpc-san",
        action="append",
        default=[],
        metavar="NAME",
        help="an extra host name or IP for the generated server certificate (repeatable)",
    )
    p.add_argument(
        "--grpc-cert", type=Path, metavar="PEM", help="serve this certificate chain instead"
    )
    p.add_argument("--grpc-key", type=Path, metavar="PEM", help="the private key of --grpc-cert")
    p.add_argument(
        "--grpc-ca", type=Path, metavar="PEM", help="with --grpc-cert: the CA to advertise"
    )
    p.add_argument(
        "--grpc-plaintext",
        action="store_true",
        help="serve gRPC without TLS (only behind a TLS-terminating proxy)",
    )


def security(args: argparse.Namespace, data: Path, clock: Clock) -> Security:
    """The mode the options ask for; argparse-style SystemExit when they contradict."""
    given = args.grpc_cert is not None or args.grpc_key is not None
    if args.grpc_plaintext and (given or args.grpc_ca or args.grpc_san):
        raise SystemExit("disksnap serve: --grpc-plaintext takes no certificate options")
    if given:
        if args.grpc_cert is None or args.grpc_key is None:
            raise SystemExit("disksnap serve: --grpc-cert and --grpc-key go together")
        if args.grpc_san:
            raise SystemExit("disksnap serve: --grpc-san is for the generated certificate")
        for path in (args.grpc_cert, args.grpc_key, args.grpc_ca):
            if path is not None and not path.is_file():
                raise SystemExit(f"disksnap serve: no such file: {path}")
        return GivenTls(args.grpc_cert, args.grpc_key, args.grpc_ca)
    if args.grpc_ca is not None:
        raise SystemExit("disksnap serve: --grpc-ca needs --grpc-cert and --grpc-key")
    if args.grpc_plaintext:
        return Plaintext()
    try:
        server_names(args.grpc_san)
    except ValueError as e:
        raise SystemExit(f"disksnap serve: --grpc-san: {e}") from None
    return GeneratedTls(data / "tls", tuple(args.grpc_san), clock.now)


def listener(
    args: argparse.Namespace,
    dispatcher: Dispatcher,
    data: Path,
    clock: Clock,
    *,
    registry: CollectorRegistry | None = None,
    pools: CallPools | None = None,
    cache: ReadCache[bytes] | None = None,
) -> GrpcListener:
    """The listener the options configure; its metrics go into ``registry``; Gets are
    answered from ``cache`` while it holds them."""
    return GrpcListener(
        dispatcher,
        host=args.host,
        port=args.grpc_port,
        security=security(args, data, clock),
        pools=pools,
        metrics=CallMetrics.create("grpc", "gRPC call", registry),
        cache=cache,
    )
