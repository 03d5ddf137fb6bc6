"""The official API surface disksnap serves: the services' descriptors from the
``yandexcloud`` package. Both transports serve exactly these (REST by their
``google.api.http`` rules, gRPC by their methods); the service layer answers the
methods it has no handler for with UNIMPLEMENTED.

Importing the generated ``*_pb2`` modules registers their files in protobuf's default
descriptor pool, which is also the type registry for ``google.protobuf.Any``.
"""

from __future__ import annotations

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message import Message
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
    """The generated class of a message descriptor (``message_factory.GetMessageClass``)."""
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls
