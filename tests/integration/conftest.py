"""Fixtures for the integration tier: a real etcd + kube-apiserver per test session.

If the binaries cannot be built or the server does not start, every test using the fixture
fails (never skips): this tier is the proof that the fakes and the manifests are faithful.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.integration.real_apiserver import RealApiserver, RealApiserverError, find_assets, running_apiserver

_startup: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_apiserver: runs against a real kube-apiserver + etcd built from the Go module proxy"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Any test that uses the server is in the real_apiserver tier, marked or not.
    for item in items:
        if "real_apiserver" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.real_apiserver)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _startup:
        terminalreporter.write_line(
            "real kube-apiserver: " + ", ".join(f"{key}={value}" for key, value in _startup.items())
        )


@pytest.fixture(scope="session")
def real_apiserver() -> Iterator[RealApiserver]:
    """A running kube-apiserver with the CRDs, namespace `aivenator` and RBAC from deploy/."""
    try:
        assets = find_assets()
    except RealApiserverError as exc:
        pytest.fail(f"real kube-apiserver binaries unavailable: {exc}", pytrace=False)
    keep = os.environ.get("AIVENATOR_KEEP_APISERVER_DIR") == "1"
    try:
        with running_apiserver(assets, keep_dir=keep) as server:
            _startup["version"] = server.version
            _startup["startup_seconds"] = f"{server.startup_seconds:.1f}"
            _startup["host"] = server.host
            yield server
    except RealApiserverError as exc:
        pytest.fail(f"real kube-apiserver did not start: {exc}", pytrace=False)
