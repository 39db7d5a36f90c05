"""Shared fixtures: one mock provider per session; a gateway per test module from its CONFIG."""

from __future__ import annotations

import uuid

import pytest

from harness import Mock, fill_config, free_port, require_artifacts, serving


@pytest.fixture(scope="session")
def mock():
    require_artifacts()
    m = Mock()
    yield m
    m.stop()


@pytest.fixture(scope="session")
def dead_port() -> int:
    """A port nothing listens on (connection refused)."""
    return free_port()


@pytest.fixture(scope="module")
def gateway(request, mock, dead_port):
    """Envoy + Switchboard for the module's `CONFIG` (its placeholders filled, see
    `harness.fill_config`) and its optional `ENV` (host environment for the Wasm VM)."""
    config = fill_config(request.module.CONFIG, mock, dead_port)
    with serving(config, name=request.module.__name__, env=getattr(request.module, "ENV", None)) as gw:
        yield gw


@pytest.fixture
def test_id() -> str:
    """A fresh id; send it as `x-test-id` to find this test's upstream requests in the mock."""
    return uuid.uuid4().hex
