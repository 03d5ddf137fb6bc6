"""The gRPC listener of ``disksnap serve``: a ``grpc.aio`` server on the serve loop.

It serves every method of ``service.descriptors.SERVICES`` through the service layer's
dispatcher (on the server's ``CallPools``: dispatch blocks) and
``ApiEndpointService`` itself. Security is one of three modes:

- :class:`GeneratedTls` (the default): the CA and server certificate of
  ``tls.ensure_certificates``; ``ca.pem`` is advertised as ``caCert``;
- :class:`GivenTls`: a certificate chain and key the operator supplies, and
  optionally the CA that clients should trust (advertised if given);
- :class:`Plaintext`: no TLS, for deployments behind a TLS-terminating proxy
  (logged as a warning at start).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import grpc
import grpc.aio

from disksnap.api.grpc import discovery, tls
from disksnap.api.grpc.handlers import UnknownMethods, dispatcher_handlers, method_handlers
from disksnap.service.context import Dispatcher
from disksnap.service.descriptors import SERVICES
from disksnap.service.metrics import CallMetrics
from disksnap.service.pools import CallPools
from disksnap.service.readcache import ReadCache

log = logging.getLogger(__name__)

GRACE_SECONDS = 5.0  # in-flight calls get this long to finish at shutdown


@dataclass(frozen=True)
class Plaintext:
    """Serve without TLS."""


@dataclass(frozen=True)
class GivenTls:
    """Serve the operator's certificate chain (PEM) and key; ``ca`` is advertised."""

    cert: Path
    key: Path
    ca: Path | None = None


@dataclass(frozen=True)
class GeneratedTls:
    """Serve a certificate for ``names`` signed by a CA kept in ``directory``."""

    directory: Path
    names: Sequence[str] = ()
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))


Security = Plaintext | GivenTls | GeneratedTls


class Advertised(Protocol):
    """What the listener records for bootstrap.json (``serve.Endpoints``)."""

    grpc: str
    ca_cert: str | None


class GrpcListener:
    """Implements ``serve.Listener``."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        host: str,
        port: int,
        security: Security,
        pools: CallPools | None = None,
        metrics: CallMetrics | None = None,
        cache: ReadCache[bytes] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.cache = cache  # Gets answered from memory while their resource is unchanged
        self.host = host
        self.port = port
        self.security = security
        self.metrics = metrics
        self.directory = discovery.EndpointDirectory()
        self._own_pools = pools is None  # shut down here only if made here
        self.pools = pools or CallPools(())
        self._server: grpc.aio.Server | None = None

    async def start(self, endpoints: Advertised) -> None:
        credentials, ca = self._credentials()
        server = grpc.aio.server(
            # Refuse a port another process holds (gRPC sets SO_REUSEPORT by default).
            options=[("grpc.so_reuseport", 0)],
        )
        for name, handlers in dispatcher_handlers(
            self.dispatcher, SERVICES, self.pools, self.metrics, self.cache
        ).items():
            server.add_registered_method_handlers(name, handlers)
        server.add_registered_method_handlers(
            str(discovery.SERVICE.full_name),
            method_handlers(discovery.SERVICE, self.directory.call, None, self.metrics),
        )
        server.add_generic_rpc_handlers((UnknownMethods(),))
        bind = f"{_bracketed(self.host)}:{self.port}"
        if credentials is None:
            port = server.add_insecure_port(bind)
        else:
            port = server.add_secure_port(bind, credentials)
        address = f"{_bracketed(_advertised_host(self.host, self.security))}:{port}"
        self.directory.address = address
        await server.start()
        self._server = server
        endpoints.grpc = address
        endpoints.ca_cert = ca
        if credentials is None:
            log.warning(
                "gRPC on %s WITHOUT TLS (--grpc-plaintext): put a TLS-terminating proxy "
                "in front of it",
                address,
            )
        else:
            log.info("gRPC on %s (TLS)", address)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(GRACE_SECONDS)
            self._server = None
        if self._own_pools:
            self.pools.shutdown()

    def _credentials(self) -> tuple[grpc.ServerCredentials | None, str | None]:
        """The server credentials and the CA path to advertise."""
        security = self.security
        if isinstance(security, Plaintext):
            return None, None
        if isinstance(security, GivenTls):
            pair = (security.key.read_bytes(), security.cert.read_bytes())
            ca = str(security.ca.resolve()) if security.ca else None
            return grpc.ssl_server_credentials([pair]), ca
        # The advertised host too: with a wildcard --host it may be the machine's name.
        advertised = _advertised_host(self.host, security)
        names = [self.host, "localhost", "127.0.0.1", *security.names, advertised]
        files = tls.ensure_certificates(security.directory, names, security.now())
        pair = (files.key.read_bytes(), files.cert.read_bytes())
        return grpc.ssl_server_credentials([pair]), str(files.ca)


def _advertised_host(host: str, security: Security) -> str:
    """The host clients should dial: the listen address, unless it is a wildcard -
    then the first extra certificate name, or this machine's name."""
    if host not in ("0.0.0.0", "::", ""):  # noqa: S104 - recognising, not binding
        return host
    if isinstance(security, GeneratedTls) and security.names:
        return security.names[0]
    return socket.getfqdn()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
