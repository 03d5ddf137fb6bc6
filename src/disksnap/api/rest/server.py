"""The REST server: an ASGI app that routes by the official HTTP rules, transcodes into
the official request messages, and calls the service layer. Starlette serves
``/openapi.json`` and ``/metrics`` and gives requests and responses their types; API
requests go from the front (``_Front``) straight to the handler.

Per request: a request id (``x-request-id`` on every response, and in every error's
``RequestInfo``); ``/openapi.json`` and ``/metrics`` (Prometheus) are served beside the
API routes. With a read cache (``service/readcache.py``, SQLite only), a Get whose answer
is still exactly what the service would say is answered in front of the app, on the
event loop: no routing, no thread, no SQL; answers of resources that just changed are
prepared off the event loop before anyone asks. Errors are ``google.rpc.Status`` JSON with
the HTTP status of ``disksnap.service.status``; an unexpected exception is logged with
its traceback and the request id, and answered with a 500 that shows neither.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from google.protobuf.message import Message
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from disksnap.api.rest.errors import RequestInvalid
from disksnap.api.rest.routes import Match, MethodNotAllowed, RouteTable
from disksnap.api.rest.template import DOUBLE_WILD, WILD
from disksnap.api.rest.transcode import parse_query, render, render_response, transcode
from disksnap.domain.errors import Code, DisksnapError
from disksnap.domain.ids import SAFE_ID, new_request_id
from disksnap.service import readcache
from disksnap.service.context import REQUEST_ID, CallContext, Dispatcher
from disksnap.service.logs import log_call
from disksnap.service.metrics import CallMetrics
from disksnap.service.pools import CallPools
from disksnap.service.readcache import CACHEABLE, ReadCache
from disksnap.service.status import HTTP_STATUS, internal_status, simple_status, status_of

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # requests are small messages; anything larger is refused
WARM_DELAY = 0.05  # seconds from a change to preparing the Get answers it affects

# A kept answer: the response body.
Cached = bytes


def rest_metrics(registry: CollectorRegistry | None = None) -> CallMetrics:
    return CallMetrics.create("rest", "REST request", registry)


def create_app(
    dispatcher: Dispatcher,
    table: RouteTable,
    openapi: dict[str, Any],
    metrics: CallMetrics | None = None,
    pools: CallPools | None = None,
    *,
    cache: ReadCache[Cached] | None = None,
) -> ASGIApp:
    """The app; service calls run on ``pools`` (by default pools of its own that treat
    every method as a change); Gets are answered from ``cache`` while it holds them."""
    api = _Api(dispatcher, table, metrics or rest_metrics(), pools or CallPools(()), cache)

    async def openapi_json(_request: Request) -> Response:
        return JsonResponse(openapi, headers={"x-request-id": new_request_id()})

    async def metrics_text(_request: Request) -> Response:
        body = generate_latest(api.metrics.registry)
        headers = {"x-request-id": new_request_id()}  # every response carries one
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=headers)

    # Every other path goes from the front straight to the API handler (``_Front``).
    routes = [
        StarletteRoute("/openapi.json", openapi_json, methods=["GET"]),
        StarletteRoute("/metrics", metrics_text, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        # What the framework itself refuses (a method no route lists, a path it cannot
        # route) is answered in the API's own Status JSON too.
        exception_handlers={HTTPException: _framework_error},
    )
    if cache is not None:
        registry = api.metrics.registry
        kept = Gauge(
            "disksnap_rest_cached_answers", "Get answers kept in memory", registry=registry
        )
        kept.set_function(lambda: len(cache))
        pending = Gauge(
            "disksnap_rest_cache_pending",
            "Changed resources whose Get answers are not prepared yet",
            registry=registry,
        )
        pending.set_function(lambda: cache.pending)
    return _Front(app, api, cache, frozenset(route.path for route in routes))


async def _framework_error(_request: Request, exc: Exception) -> Response:
    request_id = new_request_id()
    status_code = exc.status_code if isinstance(exc, HTTPException) else 500
    if status_code == 405:
        response = _error(simple_status(Code.UNIMPLEMENTED, "Method Not Allowed", request_id), 405)
    elif status_code == 404:
        response = _error(simple_status(Code.NOT_FOUND, "Not Found", request_id))
    else:
        code = Code.INVALID_ARGUMENT if status_code < 500 else Code.INTERNAL
        response = _error(simple_status(code, str(getattr(exc, "detail", "")), request_id))
    response.headers["x-request-id"] = request_id
    return response


class JsonResponse(Response):
    """JSON, encoded as Starlette's ``JSONResponse`` encodes it (compact, UTF-8, keys in
    order), by orjson: a List page of 100 snapshots took 420 us with ``json``, 32 with
    orjson (the same bytes)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def credential(scope: Scope) -> bytes:
    """The caller's credential as the cache knows it (``readcache.credential``)."""
    return readcache.credential(
        next((v for k, v in scope["headers"] if k == b"authorization"), b"")
    )


class _Front:
    """In front of the app. An API request goes straight to ``_Api.handle``: the
    framework's app would only route it there through its middleware and router, a
    quarter of the event loop's time for a request (py-spy, Snapshot.Create under load).

    With a read cache, a GET whose answer the cache holds is answered here. After a
    request that changed something, the answers of the changed resources are prepared
    in a thread, ``WARM_DELAY`` later: a resource that changes again meanwhile (a new
    snapshot is claimed by a worker, then finished) is read once, and under load one
    read-only transaction prepares many answers."""

    def __init__(
        self, app: ASGIApp, api: _Api, cache: ReadCache[Cached] | None, app_paths: frozenset[str]
    ) -> None:
        self.app, self.api, self.cache = app, api, cache
        self.app_paths = app_paths  # served by the framework's routes; the rest is the API's
        self._warming: asyncio.Future[int] | asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.app_paths:
            await self.app(scope, receive, send)
            return
        cache = self.cache
        if cache is not None and (target := self.api.cacheable(scope)) is not None:
            cache.sync_on_loop()
            hit = cache.lookup(*target, credential(scope))
            if hit is not None:
                await self.api.answer_cached(scope, send, target[0], hit)
                self._warm()
                return
        response = await self.api.handle(Request(scope, receive))
        await response(scope, receive, send)
        if cache is not None:
            cache.sync()  # what this request changed
            self._warm()

    def _warm(self) -> None:
        if self._warming is None and self.cache is not None and self.cache.pending:
            self._warming = asyncio.get_running_loop().call_later(WARM_DELAY, self._start)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.cache is not None
        self._warming = loop.run_in_executor(None, self.cache.warm, self.api.render_get)
        self._warming.add_done_callback(self._warmed)

    def _warmed(self, future: asyncio.Future[int]) -> None:
        self._warming = None
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.warning("preparing Get answers failed: %s", exc)
            return
        self._warm()  # what changed meanwhile


class _Api:
    def __init__(
        self,
        dispatcher: Dispatcher,
        table: RouteTable,
        metrics: CallMetrics,
        pools: CallPools,
        cache: ReadCache[Cached] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.pools = pools
        self.table = table
        self.metrics = metrics
        self.cache = cache
        # The cacheable Gets by their path without the id, as the official HTTP rules
        # give them (``/compute/v1/snapshots/{snapshot_id}``: literals, then one id).
        self._gets = {
            "/" + "/".join(r.template.segments[:-1]) + "/": r
            for r in table.routes
            if r.method.full_name in CACHEABLE
            and r.http_method == "GET"
            and not r.template.verb
            and r.template.segments[-1:] == (WILD,)
            and not {WILD, DOUBLE_WILD} & set(r.template.segments[:-1])
        }
        self._get_routes = {r.method.full_name: r for r in self._gets.values()}

    def cacheable(self, scope: Scope) -> tuple[str, str] | None:
        """The cacheable Get a request is (its RPC and resource id), if it is one: a GET
        of one resource's path, without a query."""
        if scope["method"] != "GET" or scope["query_string"]:
            return None
        prefix, _, rid = scope["path"].rpartition("/")
        route = self._gets.get(prefix + "/")
        if route is None or not SAFE_ID.fullmatch(rid):
            return None
        return route.method.full_name, rid

    async def handle(self, request: Request) -> Response:
        request_id = new_request_id()
        REQUEST_ID.set(request_id)  # this task's context; copied into the worker thread
        started = time.perf_counter()
        path: str = request.scope["path"]
        rpc = "unrouted"
        response: Response
        try:
            # The path as the client sent it, decoded: ``request.url`` would rebuild and
            # re-split the URL, which drops control characters from an id (a%0Ab -> ab).
            found = self.table.match(request.method, path)
            if isinstance(found, Match):
                rpc = found.route.method.full_name
                target = self.cacheable(request.scope) if self.cache is not None else None
                if target is not None and target[0] != rpc:
                    target = None
                position = self.cache.sync() if self.cache is not None and target is not None else 0
                ctx = CallContext(
                    request_id=request_id,
                    authorization=request.headers.get("authorization"),
                    idempotency_key=request.headers.get("idempotency-key"),
                )
                message = await self._call(request, found, ctx)
                code = Code.OK
                response = JsonResponse(render_response(found.route, message))
                if self.cache is not None and target is not None:
                    self._keep(request.scope, target, ctx, bytes(response.body), position)
            else:
                code, response = _unrouted(found, request_id)
        except DisksnapError as e:
            code = e.code
            response = _error(status_of(e, request_id))
        except Exception:
            log.exception("request %s (%s %s) failed", request_id, request.method, rpc)
            code = Code.INTERNAL
            response = _error(internal_status(request_id))
        response.headers["x-request-id"] = request_id
        self._done(request.method, path, response.status_code, (code, rpc), started)
        return response

    def _keep(
        self, scope: Scope, target: tuple[str, str], ctx: CallContext, body: bytes, position: int
    ) -> None:
        """Keep a Get's answer, and that its caller may read the resource's folder."""
        assert self.cache is not None
        folder = ctx.notes.readable_folder
        if folder is None:
            return
        rpc, rid = target
        self.cache.allow(credential(scope), folder, ctx.notes.valid_until, position)
        self.cache.put(rpc, rid, folder, body, position)

    def render_get(self, rpc: str, message: Message) -> bytes:
        """A cacheable Get's response body for ``message``, as ``handle`` renders it."""
        return bytes(JsonResponse(render_response(self._get_routes[rpc], message)).body)

    async def answer_cached(self, scope: Scope, send: Send, rpc: str, body: Cached) -> None:
        """Send a kept answer as ``handle`` would have sent it, headers included."""
        request_id = new_request_id()
        REQUEST_ID.set(request_id)
        started = time.perf_counter()
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"x-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._done("GET", scope["path"], 200, (Code.OK, rpc), started, cached=True)

    def _done(
        self,
        method: str,
        path: str,
        status: int,
        outcome: tuple[Code, str],
        t0: float,
        *,
        cached: bool = False,
    ) -> None:
        """The access log line and the metrics of a call (``outcome``: code and RPC);
        ``cached``: answered from the read cache."""
        code, rpc = outcome
        extra: dict[str, object] = {"rpc": rpc, "seconds": round(time.perf_counter() - t0, 6)}
        if cached:
            extra["cached"] = True
        log_call(log, f"{method} {path} -> {status} {code.name}", extra)
        self.metrics.observe(rpc, code, time.perf_counter() - t0)

    async def _call(self, request: Request, found: Match, ctx: CallContext) -> Message:
        body = await _body(request)
        query = parse_query(request.url.query if request.scope["query_string"] else "")
        message = transcode(found.route, found.variables, query, body)
        name = found.route.method.full_name
        return await self.pools.run(self.dispatcher.dispatch, name, message, ctx)


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestInvalid.single("", f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _unrouted(found: object, request_id: str) -> tuple[Code, Response]:
    """404 for a path no route has; 405 (code UNIMPLEMENTED, as grpc-gateway answers)
    for a path that other HTTP methods have."""
    if isinstance(found, MethodNotAllowed):
        status = simple_status(Code.UNIMPLEMENTED, "Method Not Allowed", request_id)
        response = _error(status, http=405)
        response.headers["allow"] = ", ".join(found.allowed)
        return Code.UNIMPLEMENTED, response
    return Code.NOT_FOUND, _error(simple_status(Code.NOT_FOUND, "Not Found", request_id))


def _error(status: Message, http: int | None = None) -> Response:
    code = Code(getattr(status, "code"))  # noqa: B009 - a google.rpc.Status
    return JsonResponse(render(status), status_code=http or HTTP_STATUS[code])
