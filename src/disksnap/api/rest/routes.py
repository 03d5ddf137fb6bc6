"""The REST route table, built from the ``google.api.http`` rules of the descriptors.

Each method's ``HttpRule`` (``google/api/http.proto``) names an HTTP method and a path
template, the part of the request that travels in the body (``"*"``: every field the
path does not bind; a field name: that field; empty: no body, the rest comes from the
query string) and optionally ``response_body``. ``additional_bindings`` add more
(method, template) pairs for the same RPC; they may not nest. Methods without a rule
are not reachable over REST, exactly as with grpc-gateway or Envoy's gRPC-JSON
transcoder. Long-running methods also carry ``yandex.cloud.api.operation``: the
message types that their ``Operation`` packs into ``metadata`` and ``response``.

Matching (:meth:`RouteTable.match`) follows grpc-gateway's ``runtime.ServeMux``: the
routes of the request's HTTP method are tried most specific first (templates with a
verb, then more literal segments); when none matches but a route of another method
does, the answer is "method not allowed" (405) with the methods that would match,
otherwise "no route" (404).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import Descriptor, MethodDescriptor, ServiceDescriptor
from yandex.cloud.api import operation_pb2 as api_operation_pb2

from disksnap.api.rest.registry import POOL
from disksnap.api.rest.template import PathTemplate, parse_template
from disksnap.service.descriptors import SERVICES

Origin = Literal["rule", "additional_binding", "supplementary"]

_PATTERN_METHODS = {
    "get": "GET",
    "put": "PUT",
    "post": "POST",
    "delete": "DELETE",
    "patch": "PATCH",
}

# Bindings the issue requires beyond what the official descriptors say. The descriptor
# of OperationService.Cancel carries only ``get: "/operations/{operation_id}:cancel"``;
# issue 3 asks for POST as well. Each entry is flagged ``origin="supplementary"``.
SUPPLEMENTARY_BINDINGS: Mapping[str, tuple[http_pb2.HttpRule, ...]] = {
    "yandex.cloud.operation.OperationService.Cancel": (
        http_pb2.HttpRule(post="/operations/{operation_id}:cancel", body="*"),
    ),
}


@dataclass(frozen=True, slots=True)
class OperationTypes:
    """What a long-running method's Operation packs: ``metadata`` and ``response`` types."""

    metadata: Descriptor
    response: Descriptor


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One (HTTP method, path template) binding of one RPC (compared by identity)."""

    http_method: str
    template: PathTemplate
    method: MethodDescriptor
    body: str
    response_body: str = ""
    operation: OperationTypes | None = None
    origin: Origin = "rule"
    json_paths: Mapping[str, str] = field(default_factory=dict)
    """The JSON spelling (``snapshotId``) of each path variable's field path."""

    @property
    def service(self) -> str:
        """Full name of the service, e.g. ``yandex.cloud.compute.v1.SnapshotService``."""
        return str(self.method.containing_service.full_name)

    @property
    def grpc_path(self) -> str:
        """The gRPC method path, ``/<service>/<method>``."""
        return f"/{self.service}/{self.method.name}"

    @property
    def path_fields(self) -> tuple[str, ...]:
        """Field paths (proto names, dotted) that the path template binds."""
        return tuple(v.field_path for v in self.template.variables)

    def __str__(self) -> str:
        return f"{self.http_method} {self.template.text} -> {self.grpc_path}"


@dataclass(frozen=True, slots=True)
class Match:
    """The route for a request and its percent-decoded path variables."""

    route: Route
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NoRoute:
    """No template matches the path under any method: HTTP 404."""


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    """The path matches only under other methods: HTTP 405 with ``Allow: <allowed>``.

    grpc-gateway reports this with ``codes.Unimplemented`` in the body.
    """

    allowed: tuple[str, ...]


MatchResult = Match | NoRoute | MethodNotAllowed


@dataclass(frozen=True)
class RouteTable:
    """Every REST route; :meth:`match` dispatches a request to one of them."""

    routes: tuple[Route, ...]
    _by_method: dict[str, tuple[Route, ...]] = field(init=False, repr=False)
    _verbs: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_unique(self.routes)
        by_method: dict[str, list[Route]] = {}
        for route in self.routes:
            by_method.setdefault(route.http_method, []).append(route)
        object.__setattr__(
            self,
            "_by_method",
            {
                m: tuple(sorted(rs, key=lambda r: r.template.specificity))
                for m, rs in by_method.items()
            },
        )
        verbs = frozenset(r.template.verb for r in self.routes if r.template.verb)
        object.__setattr__(self, "_verbs", verbs)

    def match(self, http_method: str, path: str) -> MatchResult:
        """Find the route of ``http_method`` + ``path`` (the path without the query string).

        Raises RequestInvalid when the matching route's variables are not valid
        percent-encoded UTF-8.
        """
        if not path.startswith("/"):
            return NoRoute()
        components = path[1:].split("/")
        if components[-1].startswith(":") and components[-1][1:] in self._verbs:
            return NoRoute()  # ":cancel" alone: a verb without a resource (grpc-gateway: 404)
        method = http_method.upper()
        for route in self._by_method.get(method, ()):
            raw = route.template.match(components)
            if raw is not None:
                return Match(route, route.template.decode(raw, route.json_paths))
        allowed = sorted(
            m
            for m, routes in self._by_method.items()
            if m != method and any(r.template.match(components) is not None for r in routes)
        )
        return MethodNotAllowed(tuple(allowed)) if allowed else NoRoute()

    def for_rpc(self, full_method_name: str) -> tuple[Route, ...]:
        """The routes of one RPC, e.g. ``yandex.cloud.operation.OperationService.Cancel``."""
        return tuple(r for r in self.routes if r.method.full_name == full_method_name)


def build_route_table(
    services: Iterable[ServiceDescriptor] = SERVICES,
    *,
    supplementary: Mapping[str, Sequence[http_pb2.HttpRule]] = SUPPLEMENTARY_BINDINGS,
) -> RouteTable:
    """Routes for every method of ``services`` that carries a ``google.api.http`` rule.

    ``supplementary`` adds bindings by full method name (pass ``{}`` for exactly the
    descriptors' rules); entries for methods outside ``services`` are not used. Every
    method with a rule gets its routes, served or not: the server answers the ones it
    does not implement with UNIMPLEMENTED rather than 404. Raises ValueError when a
    rule is malformed or two routes collide: that is a broken descriptor set, found at
    start-up rather than per request.
    """
    routes: list[Route] = []
    for service in services:
        for method in service.methods:
            operation = operation_types(method)
            rules = http_rules(method)
            rules += [(r, "supplementary") for r in supplementary.get(method.full_name, ())]
            for rule, origin in rules:
                routes.append(_route(method, rule, operation, origin))
    return RouteTable(tuple(routes))


def http_rules(method: MethodDescriptor) -> list[tuple[http_pb2.HttpRule, Origin]]:
    """The method's ``google.api.http`` rule and its ``additional_bindings``, in order."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return []
    rule = options.Extensions[annotations_pb2.http]
    found: list[tuple[http_pb2.HttpRule, Origin]] = [(rule, "rule")]
    for extra in rule.additional_bindings:
        if extra.additional_bindings:
            raise ValueError(f"{method.full_name}: additional_bindings may not nest")
        found.append((extra, "additional_binding"))
    return found


def operation_types(method: MethodDescriptor) -> OperationTypes | None:
    """Resolve the method's ``yandex.cloud.api.operation`` option, if it has one.

    The option names types relative to the service's package ("CreateSnapshotMetadata",
    "access.SetAccessBindingsMetadata", "google.protobuf.Empty"); they are resolved
    like protobuf type references, innermost scope first.
    """
    options = method.GetOptions()
    if not options.HasExtension(api_operation_pb2.operation):
        return None
    option = options.Extensions[api_operation_pb2.operation]
    package = str(method.containing_service.file.package)
    return OperationTypes(
        metadata=resolve_type_name(option.metadata, package),
        response=resolve_type_name(option.response, package),
    )


def resolve_type_name(name: str, package: str) -> Descriptor:
    """Find a message type named relative to ``package`` (KeyError if none exists)."""
    if name.startswith("."):
        return POOL.FindMessageTypeByName(name[1:])
    scope = package.split(".") if package else []
    for depth in range(len(scope), -1, -1):
        candidate = ".".join([*scope[:depth], name])
        try:
            return POOL.FindMessageTypeByName(candidate)
        except KeyError:
            continue
    raise KeyError(f"message type {name!r} not found from package {package!r}")


def _route(
    method: MethodDescriptor,
    rule: http_pb2.HttpRule,
    operation: OperationTypes | None,
    origin: Origin,
) -> Route:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise ValueError(f"{method.full_name}: an HttpRule without a pattern")
    if kind == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, path = _PATTERN_METHODS[kind], getattr(rule, kind)
    template = parse_template(path)
    where = f"{http_method} {path} ({method.full_name})"
    return Route(
        http_method=http_method,
        template=template,
        method=method,
        body=rule.body,
        response_body=rule.response_body,
        operation=operation,
        origin=origin,
        json_paths=_json_paths(method.input_type, template, rule.body, where),
    )


def _json_paths(
    request: Descriptor, template: PathTemplate, body: str, where: str
) -> dict[str, str]:
    """Check what the rule binds and spell its path fields in JSON (ValueError if broken).

    Path variables must name singular non-message fields; ``body`` an existing field.
    """
    paths = {}
    for var in template.variables:
        descriptor, leaf, names = request, None, []
        for name in var.field_path.split("."):
            if descriptor is None or name not in descriptor.fields_by_name:
                raise ValueError(f"{where}: no field {var.field_path!r} in {request.full_name}")
            leaf = descriptor.fields_by_name[name]
            names.append(leaf.json_name)
            descriptor = leaf.message_type
        if leaf is None or leaf.is_repeated or leaf.message_type is not None:
            raise ValueError(f"{where}: {var.field_path!r} is not a singular scalar field")
        paths[var.field_path] = ".".join(names)
    if body not in ("", "*") and body not in request.fields_by_name:
        raise ValueError(f"{where}: no body field {body!r} in {request.full_name}")
    return paths


def _check_unique(routes: Sequence[Route]) -> None:
    seen: dict[tuple[str, tuple[str, ...], str], Route] = {}
    for route in routes:
        key = (route.http_method, route.template.segments, route.template.verb)
        if key in seen:
            raise ValueError(f"routes collide: {seen[key]} and {route}")
        seen[key] = route
