"""The official descriptors disksnap serves over gRPC.

Every method of these services is registered: the request is parsed with the official
message class and handed to the service layer by its full name, which answers the
methods it does not implement with UNIMPLEMENTED. ``IamTokenService`` is here so that
the SDK's service-account flow reaches the service layer (it is served once the
service layer has a handler for it). ``ApiEndpointService`` is the transport's own
(see ``endpoints``).
"""

from __future__ import annotations

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2  # noqa: F401 - registers BadRequest and RequestInfo
from yandex.cloud.compute.v1 import (
    disk_service_pb2,
    disk_type_service_pb2,
    snapshot_service_pb2,
    zone_service_pb2,
)
from yandex.cloud.iam.v1 import iam_token_service_pb2
from yandex.cloud.operation import operation_service_pb2

SERVICES: tuple[ServiceDescriptor, ...] = (
    snapshot_service_pb2.DESCRIPTOR.services_by_name["SnapshotService"],
    disk_service_pb2.DESCRIPTOR.services_by_name["DiskService"],
    disk_type_service_pb2.DESCRIPTOR.services_by_name["DiskTypeService"],
    zone_service_pb2.DESCRIPTOR.services_by_name["ZoneService"],
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationService"],
    iam_token_service_pb2.DESCRIPTOR.services_by_name["IamTokenService"],
)


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message descriptor."""
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls
