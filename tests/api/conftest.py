from __future__ import annotations

import pytest

from disksnap.api.rest.routes import RouteTable, build_route_table
from tests.api.synthetic import thing_service


@pytest.fixture(scope="session")
def table() -> RouteTable:
    """The REST surface disksnap serves: compute v1 and operation services."""
    return build_route_table()


@pytest.fixture(scope="session")
def things() -> RouteTable:
    """Routes of the synthetic ThingService (nested, multi-segment and body-field rules)."""
    return build_route_table([thing_service()])
