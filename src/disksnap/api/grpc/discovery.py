"""``yandex.cloud.endpoint.ApiEndpointService``: endpoint discovery that points every
service of the SDK at this server.

``yandexcloud.SDK(endpoint=...)`` first calls ``ApiEndpointService/List`` (without
credentials) and then opens each stub's channel to the address listed under the
stub's service id (``compute``, ``operation``, ``iam``, ...); an id missing from the
list makes the SDK fail with "Unknown service". So the directory lists every id the
SDK can ask for, all at the server's own advertised address: the services disksnap
does not serve then answer UNIMPLEMENTED instead of failing inside the client.
``SERVICE_IDS`` covers the ids of the pinned ``yandexcloud`` release (a test keeps it
complete). No token is needed: this is public information, as in Yandex Cloud.
"""

from __future__ import annotations

from google.protobuf.message import Message
from yandex.cloud.endpoint import api_endpoint_pb2, api_endpoint_service_pb2

from disksnap.domain.errors import NotFound
from disksnap.service.context import CallContext

SERVICE = api_endpoint_service_pb2.DESCRIPTOR.services_by_name["ApiEndpointService"]

SERVICE_IDS: tuple[str, ...] = (
    "ai-assistants", "ai-files", "ai-foundation-models", "ai-llm", "ai-speechkit", "ai-stt",
    "ai-translate", "ai-vision", "ai-vision-ocr", "alb", "apigateway-connections", "billing",
    "cdn", "certificate-manager", "certificate-manager-data", "compute", "container-registry",
    "dataproc", "dataproc-manager", "datasphere", "datatransfer", "dns", "endpoint", "iam",
    "iot-devices", "kms", "kms-crypto", "load-balancer", "loadtesting", "lockbox",
    "lockbox-payload", "log-ingestion", "log-reading", "logging", "managed-airflow",
    "managed-clickhouse", "managed-elasticsearch", "managed-greenplum", "managed-kafka",
    "managed-kubernetes", "managed-mongodb", "managed-mysql", "managed-opensearch",
    "managed-postgresql", "managed-redis", "managed-spark", "managed-sqlserver", "marketplace",
    "operation", "organization-manager", "quota", "quota-manager", "resource-manager",
    "serverless-apigateway", "serverless-containers", "serverless-functions",
    "serverless-triggers", "storage-api", "trino", "vpc", "ydb",
)  # fmt: skip


class EndpointDirectory:
    """Answers List and Get with ``address``, which the listener sets once it is bound."""

    def __init__(self, address: str = "") -> None:
        self.address = address

    def call(self, method: str, request: Message, _ctx: CallContext) -> Message:
        if method.endswith(".Get"):
            assert isinstance(request, api_endpoint_service_pb2.GetApiEndpointRequest)
            return self.get(request.api_endpoint_id)
        return api_endpoint_service_pb2.ListApiEndpointsResponse(
            endpoints=[self.get(i) for i in SERVICE_IDS]
        )

    def get(self, endpoint_id: str) -> api_endpoint_pb2.ApiEndpoint:
        if endpoint_id not in SERVICE_IDS:
            raise NotFound(f"Api endpoint {endpoint_id} not found")
        return api_endpoint_pb2.ApiEndpoint(id=endpoint_id, address=self.address)
