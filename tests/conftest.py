"""Say in the test report which API server the runtime tests run against."""

from __future__ import annotations

from envtest_assets import backend_description


def pytest_report_header() -> str:
    return backend_description()
