"""Schemathesis against the live server's ``/openapi.json``: no 5xx, errors are Status JSON.

A real ``disksnap serve`` process is fuzzed over every operation of the document it
serves, in schemathesis' examples, coverage and fuzzing phases (positive and negative
data), with a fixed seed, derandomized, one worker and a bounded number of examples
(``schemathesis_support.schema_config``). Generated cases are made realistic part of
the time (``Live.realistic``): the bootstrap folder for ``folderId``, the ids of a disk,
a snapshot and operations that exist, a real zone and disk type, bodies within the rules
the document cannot state; the caller is mostly the bootstrap token, sometimes nobody,
sometimes an unknown token. Every response must be below 500 and every error response a
``google.rpc.Status`` in JSON. A failure lists each kind of violation with the
operations it hit, its first request and response and, for a 5xx, what the server
logged under the request id.

Only these two properties are asserted, plus that the run reached every operation and
the success path of the main ones (else it would prove little). Whether the document is
complete enough for schemathesis' conformance checks (documented statuses, response
schemas, which values are accepted) is deliberately not part of this test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.schemathesis_support import Live

pytestmark = pytest.mark.slow

# Operations whose success path the realistic cases must reach at least once.
MUST_SUCCEED = (
    "GET /compute/v1/snapshots/{snapshot_id}",
    "GET /compute/v1/snapshots",
    "POST /compute/v1/snapshots",
    "PATCH /compute/v1/snapshots/{snapshot_id}",
    "DELETE /compute/v1/snapshots/{snapshot_id}",
    "GET /compute/v1/disks/{disk_id}",
    "GET /compute/v1/disks",
    "POST /compute/v1/disks",
    "PATCH /compute/v1/disks/{disk_id}",
    "DELETE /compute/v1/disks/{disk_id}",
    "GET /compute/v1/zones/{zone_id}",
    "GET /compute/v1/diskTypes/{disk_type_id}",
    "GET /operations/{operation_id}",
    "POST /operations/{operation_id}:cancel",
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with Live.start(tmp_path_factory.mktemp("schemathesis") / "data") as running:
        yield running


def test_no_server_error_and_every_error_is_a_status(live: Live) -> None:
    live.run_schemathesis()
    assert not live.engine_errors, live.engine_errors
    documented = live.session.get(live.url("/openapi.json"), timeout=30).json()["paths"]
    operations = {f"{m.upper()} {path}" for path, item in documented.items() for m in item}
    assert set(live.statuses) == operations, "schemathesis did not call every operation"
    unreached = [op for op in MUST_SUCCEED if not live.statuses[op][200]]
    assert not unreached, f"the realistic cases never succeeded on {unreached}"
    if live.findings:
        pytest.fail(live.report(), pytrace=False)
