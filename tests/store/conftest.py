"""Fixtures of the store tests: small real layouts and attributes."""

from __future__ import annotations

import pytest
from store_helpers import small_layout

from fieldkit.store.layout import StoreLayout


@pytest.fixture
def layout() -> StoreLayout:
    return small_layout()


@pytest.fixture
def attrs() -> dict:
    return {"parameters": {"clips": {"length_s": 0.002}, "features": {"n_mels": 5}},
            "versions": {"fieldkit": "0.1.0", "zarr": "3.1.6"}}
