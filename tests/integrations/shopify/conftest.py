"""Fixtures of the order-sync tests (their data and readers: sync_support.py)."""
from __future__ import annotations

import pytest
import respx

from tests.integrations.shopify.sync_support import sync_shop as build_sync_shop


@pytest.fixture
def sync_shop(session):
    """Call it for a shop (see sync_support.sync_shop): `synced_at=SYNCED` for one a backfill has run for."""
    return lambda **settings: build_sync_shop(session, **settings)


@pytest.fixture
def router():
    with respx.mock(assert_all_called=False) as mock:
        yield mock
