"""The official descriptors disksnap serves over REST, and the pool that resolves them.

Importing the generated ``*_pb2`` modules of the ``yandexcloud`` package registers
their files in protobuf's default descriptor pool. That pool is then the type
registry for ``google.protobuf.Any``: ``json_format`` looks an Any's
``type.googleapis.com/<full name>`` up there, so every type that can appear inside
an Operation's ``metadata``/``response`` or in an error's ``details`` must have been
imported here: ``google.protobuf.Empty`` is the response of every Delete, and
``google.rpc.error_details_pb2`` brings BadRequest and RequestInfo for errors.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool, empty_pb2, message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from yandex.cloud.compute.v1 import (
    disk_service_pb2,
    disk_type_service_pb2,
    snapshot_service_pb2,
    zone_service_pb2,
)
from yandex.cloud.iam.v1 import iam_token_service_pb2
from yandex.cloud.operation import operation_service_pb2

# The Any-registry of the REST layer: protobuf's default pool, which the imports above fill.
POOL: DescriptorPool = descriptor_pool.Default()

TYPE_URL_PREFIX = "type.googleapis.com/"

# The services whose google.api.http rules make up the REST surface.
SERVICES: tuple[ServiceDescriptor, ...] = (
    snapshot_service_pb2.DESCRIPTOR.services_by_name["SnapshotService"],
    disk_service_pb2.DESCRIPTOR.services_by_name["DiskService"],
    disk_type_service_pb2.DESCRIPTOR.services_by_name["DiskTypeService"],
    zone_service_pb2.DESCRIPTOR.services_by_name["ZoneService"],
    operation_service_pb2.DESCRIPTOR.services_by_name["OperationService"],
    iam_token_service_pb2.DESCRIPTOR.services_by_name["IamTokenService"],
)

# Messages the REST layer packs or renders outside any method signature.
EXTRA_TYPES: tuple[Descriptor, ...] = (
    empty_pb2.Empty.DESCRIPTOR,
    status_pb2.Status.DESCRIPTOR,
    error_details_pb2.BadRequest.DESCRIPTOR,
    error_details_pb2.RequestInfo.DESCRIPTOR,
)


def message_class(descriptor: Descriptor) -> type[Message]:
    """The generated class of a message descriptor (``message_factory.GetMessageClass``)."""
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def type_url(descriptor: Descriptor) -> str:
    """The Any type URL of a message type: ``type.googleapis.com/<full name>``."""
    return f"{TYPE_URL_PREFIX}{descriptor.full_name}"


def resolve_type_url(url: str) -> Descriptor:
    """The message descriptor an Any type URL names; KeyError if the pool lacks it."""
    name = url.rpartition("/")[2]
    return POOL.FindMessageTypeByName(name)
