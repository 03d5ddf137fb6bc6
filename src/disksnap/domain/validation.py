"""The field rules of the compute requests, as the official ``.proto`` comments state them.

The ``yandexcloud`` descriptors no longer carry the ``yandex.cloud`` validation options,
so the rules are written down here: ids ≤ 50 characters, names
``|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?``, descriptions ≤ 256, at most 64 labels with keys
``[a-z][-_./\\@0-9a-z]*`` of 1-63 characters and values ``[-_./\\@0-9a-z]*`` of at most 63,
``pageSize`` 0-1000, required fields, and a ``hardwareGeneration`` that names exactly one
generation.

Two levels. A *rule* is a pure function from one value to a list of
:class:`~disksnap.domain.errors.FieldViolation` (empty when the value is fine); its
``field`` argument is the JSON path the user wrote (camelCase, ``labels[key]``). A
*request check* (``check_create_snapshot`` …) runs every rule of one request, collects
all violations and raises one :class:`~disksnap.domain.errors.BadRequest`, so a client
sees every problem at once. Lengths count Unicode code points.

The descriptions copy the wording of Yandex Cloud's request validator (``Field is
required``, ``Length must be less than or equal to 50``, ``Value must be in the range of
1 to 2000``, ``Number of elements must be less than or equal to 100``, ``Field does not
match the pattern /…/``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence

from disksnap.domain.errors import BadRequest, FieldViolation
from disksnap.domain.ids import ALPHABET, ID_LENGTH

Violations = list[FieldViolation]

MAX_ID_LENGTH = 50
MAX_DESCRIPTION_LENGTH = 256
MAX_LABELS = 64
MAX_LABEL_KEY_LENGTH = 63
MAX_LABEL_VALUE_LENGTH = 63
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_FILTER_LENGTH = 1000
MAX_ORDER_BY_LENGTH = 100
# Disk sizes the protos allow: 4 MiB up to 26 TiB at creation, 4 TiB when growing.
MIN_DISK_SIZE = 4 * 1024**2
MAX_CREATE_DISK_SIZE = 28_587_302_322_176
MAX_UPDATE_DISK_SIZE = 4 * 1024**4

# The patterns as the protos print them (and as the messages quote them) …
NAME_PATTERN = "|[a-z]([-_a-z0-9]{0,61}[a-z0-9])?"
LABEL_KEY_PATTERN = r"[a-z][-_./\@0-9a-z]*"
LABEL_VALUE_PATTERN = r"[-_./\@0-9a-z]*"
# … and as Python matches them: explicit ASCII classes, always with fullmatch.
_NAME = re.compile(r"[a-z](?:[-_a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = re.compile(r"[a-z][-_./\\@0-9a-z]*")
_LABEL_VALUE = re.compile(r"[-_./\\@0-9a-z]*")
_OWN_ID = re.compile(f"[{re.escape(ALPHABET)}]{{{ID_LENGTH}}}")

HARDWARE_GENERATIONS = ("legacyFeatures", "generation2Features")
SNAPSHOT_UPDATE_PATHS = ("name", "description", "labels")
DISK_UPDATE_PATHS = ("name", "description", "labels", "size")


# Rules: one value in, its violations out.


def required(field: str, value: str | int) -> Violations:
    """A required field is set: a non-empty string, a non-zero number."""
    return [] if value else [FieldViolation(field, "Field is required")]


def max_length(field: str, value: str, limit: int) -> Violations:
    if len(value) <= limit:
        return []
    return [FieldViolation(field, f"Length must be less than or equal to {limit}")]


def in_range(field: str, value: int, low: int, high: int) -> Violations:
    if low <= value <= high:
        return []
    return [FieldViolation(field, f"Value must be in the range of {low} to {high}")]


def resource_id(field: str, value: str, *, optional: bool = False) -> Violations:
    """An id the protos take: required unless ``optional``, at most 50 characters."""
    if not value:
        return [] if optional else required(field, value)
    return max_length(field, value, MAX_ID_LENGTH)


def is_own_id(value: str, prefixes: Collection[str] = ()) -> bool:
    """Whether ``value`` has the form of the ids disksnap issues (20 characters of ``[a-z0-9]``).

    With ``prefixes``, it must also start with one of them. Callers use this to skip a
    lookup; a well-sized id of the wrong form is still *not found*, as Yandex Cloud
    answers for unknown ids, rather than a validation error.
    """
    if _OWN_ID.fullmatch(value) is None:
        return False
    return not prefixes or value.startswith(tuple(prefixes))


def own_id(field: str, value: str, prefixes: Collection[str] = ()) -> Violations:
    """A value that must be an id disksnap issued (see :func:`is_own_id`)."""
    if is_own_id(value, prefixes):
        return []
    form = f"{ID_LENGTH} characters of [a-z0-9]"
    if prefixes:
        form += " starting with " + " or ".join(f'"{p}"' for p in sorted(prefixes))
    return [FieldViolation(field, f'Value "{value}" is not a valid id: expected {form}')]


def name(field: str, value: str) -> Violations:
    """A resource name; the empty name is allowed (the pattern's first alternative)."""
    if not value or _NAME.fullmatch(value):
        return []
    return [FieldViolation(field, f"Field does not match the pattern /{NAME_PATTERN}/")]


def description(field: str, value: str) -> Violations:
    return max_length(field, value, MAX_DESCRIPTION_LENGTH)


def label_key(field: str, key: str) -> Violations:
    """The key of the label at ``field`` (``labels[key]``): 1-63 characters, the pattern."""
    found: Violations = []
    if not 1 <= len(key) <= MAX_LABEL_KEY_LENGTH:
        found.append(
            FieldViolation(field, f"Key length must be in the range of 1 to {MAX_LABEL_KEY_LENGTH}")
        )
    if key and _LABEL_KEY.fullmatch(key) is None:
        found.append(FieldViolation(field, f"Key does not match the pattern /{LABEL_KEY_PATTERN}/"))
    return found


def label_value(field: str, value: str) -> Violations:
    """The value of the label at ``field``: at most 63 characters, the pattern (may be empty)."""
    found: Violations = []
    if len(value) > MAX_LABEL_VALUE_LENGTH:
        found.append(
            FieldViolation(
                field, f"Value length must be less than or equal to {MAX_LABEL_VALUE_LENGTH}"
            )
        )
    if _LABEL_VALUE.fullmatch(value) is None:
        found.append(
            FieldViolation(field, f"Value does not match the pattern /{LABEL_VALUE_PATTERN}/")
        )
    return found


def labels(field: str, value: Mapping[str, str]) -> Violations:
    """A label map: at most 64 entries, each key and value by its rule (``labels[key]``)."""
    found: Violations = []
    if len(value) > MAX_LABELS:
        found.append(
            FieldViolation(field, f"Number of elements must be less than or equal to {MAX_LABELS}")
        )
    for key, item in value.items():
        entry = f"{field}[{key}]"
        found += label_key(entry, key)
        found += label_value(entry, item)
    return found


def page_size(field: str, value: int) -> Violations:
    """``pageSize``: 0 (the default, :data:`DEFAULT_PAGE_SIZE`) up to 1000."""
    return in_range(field, value, 0, MAX_PAGE_SIZE)


def hardware_generation(field: str, chosen: Collection[str] | None) -> Violations:
    """A ``HardwareGeneration`` names exactly one generation when it is present.

    ``chosen`` lists the members of its ``features`` oneof that the request set (JSON
    names); ``None`` means the field is absent, which is fine.
    """
    if chosen is None or len(chosen) == 1:
        return []
    listed = ", ".join(HARDWARE_GENERATIONS)
    return [FieldViolation(field, f"Exactly one of the fields must be set: {listed}")]


def update_mask(field: str, paths: Sequence[str], allowed: Sequence[str]) -> Violations:
    """Every path of an ``updateMask`` names a field the method can update."""
    listed = ", ".join(allowed)
    return [
        FieldViolation(field, f'Unknown field "{path}" in the mask; allowed fields: {listed}')
        for path in paths
        if path not in allowed
    ]


# Request checks: every rule of one request, one BadRequest with everything found.


def raise_if_any(*groups: Iterable[FieldViolation]) -> None:
    """Raise one BadRequest with every violation of ``groups``, or return quietly."""
    found = [v for group in groups for v in group]
    if found:
        raise BadRequest(found)


def check_id(field: str, value: str) -> None:
    """Requests that carry one id: Get, Delete, Cancel (``snapshotId``, ``operationId`` …)."""
    raise_if_any(resource_id(field, value))


def check_list_operations(field: str, parent_id: str, size: int) -> None:
    """``ListSnapshotOperations`` / ``ListDiskOperations``: the parent id and the page size.

    The ``pageToken`` is checked when :mod:`disksnap.domain.paging` decodes it.
    """
    raise_if_any(resource_id(field, parent_id), page_size("pageSize", size))


def check_create_snapshot(
    *,
    folder_id: str,
    disk_id: str,
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    hardware_generation: Collection[str] | None = None,
) -> None:
    """``SnapshotService.Create``. ``hardware_generation`` is None when the request has
    none, else the JSON names of the generations it sets: for a message ``m``,
    ``[snake_to_camel(m.hardware_generation.WhichOneof("features"))]``, or ``[]``.
    """
    raise_if_any(
        resource_id("folderId", folder_id),
        resource_id("diskId", disk_id),
        _named(name, description, labels),
        _hardware_generation("hardwareGeneration", hardware_generation),
    )


def check_update_snapshot(
    *,
    snapshot_id: str,
    update_mask: Sequence[str] = (),
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
) -> None:
    """``SnapshotService.Update``; ``update_mask`` holds the mask's (snake_case) paths."""
    raise_if_any(
        resource_id("snapshotId", snapshot_id),
        _update_mask("updateMask", update_mask, SNAPSHOT_UPDATE_PATHS),
        _named(name, description, labels),
    )


def check_create_disk(
    *,
    folder_id: str,
    zone_id: str,
    size: int,
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    type_id: str = "",
    image_id: str = "",
    snapshot_id: str = "",
    kms_key_id: str = "",
    hardware_generation: Collection[str] | None = None,
) -> None:
    """``DiskService.Create``: ``size`` is required, 4 MiB up to 26 TiB."""
    raise_if_any(
        resource_id("folderId", folder_id),
        _named(name, description, labels),
        resource_id("typeId", type_id, optional=True),
        resource_id("zoneId", zone_id),
        required("size", size) or in_range("size", size, MIN_DISK_SIZE, MAX_CREATE_DISK_SIZE),
        resource_id("imageId", image_id, optional=True),
        resource_id("snapshotId", snapshot_id, optional=True),
        _hardware_generation("hardwareGeneration", hardware_generation),
        resource_id("kmsKeyId", kms_key_id, optional=True),
    )


def check_update_disk(
    *,
    disk_id: str,
    update_mask: Sequence[str] = (),
    name: str = "",
    description: str = "",
    labels: Mapping[str, str] | None = None,
    size: int = 0,
) -> None:
    """``DiskService.Update``: ``size`` 0 means "not given", else 4 MiB up to 4 TiB."""
    raise_if_any(
        resource_id("diskId", disk_id),
        _update_mask("updateMask", update_mask, DISK_UPDATE_PATHS),
        _named(name, description, labels),
        in_range("size", size, MIN_DISK_SIZE, MAX_UPDATE_DISK_SIZE) if size else [],
    )


def _named(name_: str, description_: str, labels_: Mapping[str, str] | None) -> Violations:
    found = name("name", name_) + description("description", description_)
    return found + labels("labels", labels_ or {})


# Module-level aliases so the request checks' keyword arguments can shadow the rules.
_hardware_generation = hardware_generation
_update_mask = update_mask
