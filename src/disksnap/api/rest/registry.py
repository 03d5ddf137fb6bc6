"""The official descriptors disksnap serves over REST, and the pool that resolves them.

Importing the generated ``*_pb2`` modules of the ``yandexcloud`` package (in
``service.descriptors``, whose ``SERVICES`` make up the REST surface) registers their
files in protobuf's default descriptor pool. That pool is then the type
registry for ``google.protobuf.Any``: ``json_format`` looks an Any's
``type.googleapis.com/<full name>`` up there, so every type that can appear inside
an Operation's ``metadata``/``response`` or in an error's ``details`` must have been
imported: ``google.protobuf.Empty`` is the response of every Delete, and
``google.rpc.error_details_pb2`` brings BadRequest and RequestInfo for errors.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool, empty_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.descriptor_pool import DescriptorPool
from google.rpc import error_details_pb2, status_pb2

from disksnap.service import descriptors  # noqa: F401 - fills the pool with the API's files

# The Any-registry of the REST layer: protobuf's default pool, which the imports above fill.
POOL: DescriptorPool = descriptor_pool.Default()

TYPE_URL_PREFIX = "type.googleapis.com/"

# Messages the REST layer packs or renders outside any method signature.
EXTRA_TYPES: tuple[Descriptor, ...] = (
    empty_pb2.Empty.DESCRIPTOR,
    status_pb2.Status.DESCRIPTOR,
    error_details_pb2.BadRequest.DESCRIPTOR,
    error_details_pb2.RequestInfo.DESCRIPTOR,
)


def type_url(descriptor: Descriptor) -> str:
    """The Any type URL of a message type: ``type.googleapis.com/<full name>``."""
    return f"{TYPE_URL_PREFIX}{descriptor.full_name}"


def resolve_type_url(url: str) -> Descriptor:
    """The message descriptor an Any type URL names; KeyError if the pool lacks it."""
    name = url.rpartition("/")[2]
    return POOL.FindMessageTypeByName(name)
