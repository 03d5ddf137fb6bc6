"""The gRPC transport: the official services served generically from the ``yandexcloud``
descriptors over ``grpc.aio``, with endpoint discovery and TLS (see docs/grpc.md)."""
