"""Shopify webhook payloads (shaped like Shopify's 2026-07 samples) for tests."""
from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

# The person in the samples; `personalized` swaps her for someone a test can search for.
SAMPLE_PERSON = {"email": "ana.silva@example.com", "first_name": "Ana", "last_name": "Silva", "phone": "+351912345678"}


@cache
def _raw(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


def sample(name: str, **overrides: Any) -> dict[str, Any]:
    """A fresh copy of fixtures/<name>.json with top-level fields overridden."""
    payload = copy.deepcopy(json.loads(_raw(name)))
    payload.update(overrides)
    return payload


def personalized(payload: dict[str, Any], *, email: str, first_name: str, last_name: str, phone: str) -> dict[str, Any]:
    """The payload with the sample shopper's email, names and phone replaced everywhere."""
    text = json.dumps(payload)
    text = text.replace(SAMPLE_PERSON["email"], email).replace(SAMPLE_PERSON["phone"], phone)
    text = text.replace('"Ana Silva"', json.dumps(f"{first_name} {last_name}"))
    text = text.replace('"Ana"', json.dumps(first_name)).replace('"Silva"', json.dumps(last_name))
    return json.loads(text)
