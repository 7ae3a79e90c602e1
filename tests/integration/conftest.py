"""Fixtures shared by the integration tests (pytest finds this file by its name)."""
import pytest


@pytest.fixture
def cleanup():
    """Register cleanup callables; they run in reverse order even when the test fails, and one
    that fails does not keep the others from running (nor mask the test's own failure)."""
    finalizers = []
    yield finalizers.append
    for fn in reversed(finalizers):
        try:
            fn()
        except Exception:  # noqa: BLE001 - keep cleaning up
            pass
