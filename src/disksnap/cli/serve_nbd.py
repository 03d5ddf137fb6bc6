"""The NBD options of ``disksnap serve`` and the listener they configure (docs/nbd.md)."""

from __future__ import annotations

import argparse

from disksnap.engine.engine import Engine
from disksnap.meta import Meta
from disksnap.nbd.server import NbdServer, is_loopback


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nbd-port", type=int, default=10809, help="NBD port (default 10809; 0 picks a free port)"
    )
    p.add_argument("--nbd-host", default="127.0.0.1", help="NBD listen address (default 127.0.0.1)")
    p.add_argument(
        "--nbd-allow-remote",
        action="store_true",
        help="allow --nbd-host to be a non-loopback address: NBD has no authentication, "
        "so only on a trusted network",
    )


def listener(args: argparse.Namespace, meta: Meta, engine: Engine) -> NbdServer:
    if not args.nbd_allow_remote and not is_loopback(args.nbd_host):
        raise SystemExit(
            f"disksnap serve: NBD has no authentication; serving it on {args.nbd_host} "
            "needs --nbd-allow-remote (trusted networks only)"
        )
    return NbdServer(
        meta, engine, host=args.nbd_host, port=args.nbd_port, allow_remote=args.nbd_allow_remote
    )
