from __future__ import annotations

from hypothesis import HealthCheck, settings

# Deterministic and bounded: CI and developers see the same examples.
settings.register_profile(
    "disksnap",
    deadline=None,
    derandomize=True,
    max_examples=50,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("disksnap")
