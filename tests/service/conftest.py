"""Fixtures shared by the HTTP tests: each module starts its own `server` (its settings differ);
`client` talks to whichever server the requesting module defines."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client(server):
    with server.client() as client:
        yield client
