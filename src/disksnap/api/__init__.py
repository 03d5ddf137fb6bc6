"""Transports: REST (``api.rest``) and gRPC (``api.grpc``), independent of each other.

Both are thin: they parse a request into the official protobuf message, call one
service method and convert the result. Neither holds behaviour the other needs.
"""
