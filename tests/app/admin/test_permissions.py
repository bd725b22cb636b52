"""Every operation × every role: anonymous → 401, a role without the permission → 403, a role
with it gets past the guard; and a shop-B identity never reaches shop A's rows (404, no data)."""
from __future__ import annotations

import re

import pytest

from app.admin.api.registry import OPERATIONS
from app.admin.auth import ROLE_PERMISSIONS
from tests.app.admin.conftest import API

GUARDED = [op for op in OPERATIONS if op.permission is not None]
ROLES = ("owner", "support", "viewer")


def _url(rule: str) -> str:
    return API + re.sub(r"<(?:int:)?\w+>", "999999999", rule)


def _call(client, op, headers=None):
    kwargs = {"headers": headers or {}}
    if op.body is not None:
        kwargs["json"] = {}
    return client.open(_url(op.rule), method=op.method.upper(), **kwargs)


def test_the_permission_table_is_the_documented_one():
    assert ROLE_PERMISSIONS == {
        "owner": {"read", "adjust", "settings", "staff", "cancel"},
        "support": {"read", "adjust"},
        "viewer": {"read"},
    }
    assert len(GUARDED) >= 35


@pytest.mark.parametrize("op", GUARDED, ids=lambda op: f"{op.method} {op.rule}")
def test_anonymous_callers_get_401_on_every_guarded_operation(client, op):
    response = _call(client, op)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("op", GUARDED, ids=lambda op: f"{op.method} {op.rule}")
def test_each_role_passes_the_guard_exactly_where_its_permissions_allow(client, shop_a, op):
    for role in ROLES:
        response = _call(client, op, shop_a.headers[role])
        code = (response.get_json() or {}).get("error", {}).get("code") if response.is_json else None
        if op.permission in ROLE_PERMISSIONS[role]:
            assert code != "forbidden" and response.status_code != 401, (role, response.status_code, code)
        else:
            assert response.status_code == 403 and code == "forbidden", (role, response.status_code)
