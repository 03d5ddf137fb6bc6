"""REST: the proto3 JSON mapping of the official messages, routed by their HTTP rules.

DESIGN.md invariant 4: one schema. Routes come from the ``google.api.http`` options of
the ``yandexcloud`` descriptors (:mod:`.routes`), requests are transcoded into the
same protobuf messages gRPC receives and responses rendered from the messages gRPC
sends (:mod:`.transcode`), and the OpenAPI document is generated from both
(:mod:`.openapi`) — as grpc-gateway and Envoy's gRPC-JSON transcoder do. Parsing
problems are :class:`.errors.RequestInvalid` (INVALID_ARGUMENT) with field violations.

May import ``disksnap.domain`` (and, once it exists, ``disksnap.service``); never the
engine, the metadata store or the gRPC transport.
"""

from disksnap.api.rest.errors import FieldViolation, RequestInvalid
from disksnap.api.rest.openapi import build_openapi
from disksnap.api.rest.routes import (
    Match,
    MethodNotAllowed,
    NoRoute,
    Route,
    RouteTable,
    build_route_table,
)
from disksnap.api.rest.transcode import parse_query, render, render_json, transcode

__all__ = [
    "FieldViolation",
    "Match",
    "MethodNotAllowed",
    "NoRoute",
    "RequestInvalid",
    "Route",
    "RouteTable",
    "build_openapi",
    "build_route_table",
    "parse_query",
    "render",
    "render_json",
    "transcode",
]
