"""Customers: search, detail, ledger, and adjustments with reasons, notes and support limits."""
from __future__ import annotations

from sqlalchemy import select

from app.admin.auth import staff_actor
from app.models import AuditLog, LedgerEntry
from tests.app.admin.conftest import API, cookie_login
from tests.factories import STAFF_PASSWORD, give_points, make_customer, make_staff


def _adjust(client, headers, customer_id, points, reason="goodwill", **extra):
    return client.post(f"{API}/customers/{customer_id}/adjustments", headers=headers,
                       json={"points": points, "reason": reason, **extra})


def test_search_finds_by_email_prefix_name_and_platform_id_newest_first(client, session, shop_a):
    ada = make_customer(session, shop_a.shop, email="ada.l@example.com", first_name="Ada", last_name="Lovelace",
                        platform_customer_id="gid-77")
    grace = make_customer(session, shop_a.shop, email="grace@example.com", first_name="Grace", last_name="Hopper")
    session.commit()
    headers = shop_a.headers["viewer"]

    def ids(q):
        return [c["id"] for c in client.get(f"{API}/customers", query_string={"q": q}, headers=headers).get_json()["items"]]

    assert ids("ADA.L@") == [ada.id]
    assert ids("love") == [ada.id]
    assert ids("grace hop") == [grace.id]
    assert ids("gid-77") == [ada.id]
    assert ids("%") == []  # LIKE wildcards are literal
    assert ids("") == [grace.id, ada.id]


def test_pages_follow_the_opaque_cursor_to_the_end(client, session, shop_a):
    made = [make_customer(session, shop_a.shop).id for _ in range(5)]
    session.commit()
    seen, cursor = [], None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API}/customers", query_string=query, headers=shop_a.headers["viewer"]).get_json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert not cursor.isdigit()  # opaque, not a bare id
    assert seen == sorted(made, reverse=True)


def test_a_tampered_cursor_or_an_out_of_range_limit_is_422(client, shop_a):
    for query in ({"cursor": "not-a-cursor"}, {"limit": 0}, {"limit": 101}, {"unknown": 1}):
        response = client.get(f"{API}/customers", query_string=query, headers=shop_a.headers["viewer"])
        assert response.status_code == 422 and response.get_json()["error"]["fields"]


def test_detail_shows_balance_tier_ladder_stage_orders_and_ledger(client, session, shop_a, customer_a):
    give_points(session, customer_a, 120)
    session.commit()
    body = client.get(f"{API}/customers/{customer_a.id}", headers=shop_a.headers["viewer"]).get_json()
    assert body["customer"]["points_balance"] == 120 and body["ladder_stage"] == "prospect"
    assert body["orders"] == [] and [e["points"] for e in body["ledger"]] == [120]
    assert body["tier"] is None


def test_support_adjusts_with_a_reason_and_the_note_reaches_the_ledger_and_the_audit_log(client, session, shop_a,
                                                                                          customer_a):
    response = _adjust(client, shop_a.headers["support"], customer_a.id, 250, note="Sorry about the late parcel")
    assert response.status_code == 201 and response.get_json()["points_balance"] == 250
    entry = session.scalars(select(LedgerEntry).where(LedgerEntry.id == response.get_json()["entry_id"])).one()
    support_token_actor = client.get(f"{API}/me", headers=shop_a.headers["support"]).get_json()["actor"]
    assert (entry.kind, entry.points, entry.reason, entry.actor) == ("adjust", 250, "goodwill", support_token_actor)
    ledger = client.get(f"{API}/customers/{customer_a.id}/ledger", headers=shop_a.headers["viewer"]).get_json()
    assert ledger["items"][0]["note"] == "Sorry about the late parcel"
    audit = client.get(f"{API}/audit-log", query_string={"customer_id": customer_a.id},
                       headers=shop_a.headers["viewer"]).get_json()["items"]
    assert [(a["action"], a["actor"], a["details"]["points"]) for a in audit] == [
        ("points.adjust", support_token_actor, 250)]


def test_other_needs_a_detail_and_zero_or_huge_adjustments_are_422_changing_nothing(client, session, shop_a, customer_a):
    for body in ({"points": 10, "reason": "other"}, {"points": 0, "reason": "goodwill"},
                 {"points": 2_000_000, "reason": "goodwill"}, {"points": 10, "reason": "because"},
                 {"points": "10", "reason": "goodwill"}, {"points": 10}):
        response = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["owner"])
        assert response.status_code == 422, body
    assert session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer_a.id)).all() == []
    ok = _adjust(client, shop_a.headers["owner"], customer_a.id, 10, reason="other", reason_detail="birthday mix-up")
    assert ok.status_code == 201
    assert session.get(LedgerEntry, ok.get_json()["entry_id"]).reason == "other: birthday mix-up"


def test_an_adjustment_cannot_take_the_balance_below_zero(client, shop_a, customer_a):
    response = _adjust(client, shop_a.headers["owner"], customer_a.id, -1)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "insufficient_points"


def test_support_is_limited_per_adjustment_and_per_shop_day_and_owners_are_not(client, session, shop_a, customer_a):
    support = shop_a.headers["support"]
    over = _adjust(client, support, customer_a.id, 1001)
    assert over.status_code == 403 and over.get_json()["error"]["code"] == "adjustment_limit"
    for _ in range(5):  # 5 × 1000 = the default daily 5000, counted as |points|
        assert _adjust(client, support, customer_a.id, 1000).status_code == 201
    refused = _adjust(client, support, customer_a.id, -1)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "adjustment_limit"
    # The daily sum is the member's, whatever way they sign in: their other token counts too.
    from tests.factories import make_api_token
    from tests.app.admin.conftest import bearer

    second = bearer(make_api_token(session, shop_a.staff["support"], "second"))
    session.commit()
    assert _adjust(client, second, customer_a.id, 1).status_code == 403
    assert _adjust(client, shop_a.headers["owner"], customer_a.id, 50_000).status_code == 201
    assert _adjust(client, shop_a.headers["viewer"], customer_a.id, 1).status_code == 403
    rows = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id,
                                                  AuditLog.action == "points.adjust")).all()
    assert len(rows) == 6


def test_the_support_limits_are_per_shop_settings(client, shop_a, customer_a):
    changed = client.patch(f"{API}/settings", headers=shop_a.headers["owner"],
                           json={"support_adjust_limit_per_adjustment": 20, "support_adjust_limit_per_day": 30})
    assert changed.status_code == 200
    assert _adjust(client, shop_a.headers["support"], customer_a.id, 21).status_code == 403
    assert _adjust(client, shop_a.headers["support"], customer_a.id, 20).status_code == 201
    assert _adjust(client, shop_a.headers["support"], customer_a.id, 11).status_code == 403


def test_shop_b_cannot_read_or_adjust_shop_a_customers(client, session, shop_a, shop_b, customer_a):
    headers = shop_b.headers["owner"]
    for path in (f"/customers/{customer_a.id}", f"/customers/{customer_a.id}/ledger"):
        response = client.get(API + path, headers=headers)
        assert response.status_code == 404 and "Ada" not in response.get_data(as_text=True)
    assert _adjust(client, headers, customer_a.id, 5).status_code == 404
    listed = client.get(f"{API}/customers", query_string={"q": "Ada"}, headers=headers).get_json()["items"]
    assert listed == []
    assert session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == customer_a.id)).all() == []


def test_a_retried_adjustment_with_the_same_idempotency_key_adjusts_once(client, session, shop_a, customer_a):
    body = {"points": 40, "reason": "goodwill", "idempotency_key": "form-123"}
    first = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["support"])
    again = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["support"])
    assert first.get_json()["entry_id"] is not None and again.get_json() == {"entry_id": None, "points_balance": 40}
    # Another caller's identical key is their own adjustment.
    other = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["owner"])
    assert other.get_json()["points_balance"] == 80


def test_a_support_retry_that_used_the_last_of_the_daily_limit_is_answered_as_a_replay(client, shop_a, customer_a):
    # The first answer was lost: the retry must say "done once", not "over your limit".
    body = {"points": 1000, "reason": "goodwill", "idempotency_key": "retry-at-limit"}
    for _ in range(4):
        assert _adjust(client, shop_a.headers["support"], customer_a.id, 1000).status_code == 201
    first = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["support"])
    again = client.post(f"{API}/customers/{customer_a.id}/adjustments", json=body, headers=shop_a.headers["support"])
    assert first.status_code == 201 and first.get_json()["points_balance"] == 5000
    assert again.status_code == 201 and again.get_json() == {"entry_id": None, "points_balance": 5000}


def test_an_adjustment_past_the_largest_balance_is_refused_not_a_database_error(client, session, shop_a):
    # points_balance is a 32-bit column: a positive adjustment must not overflow it into a 500.
    rich = make_customer(session, shop_a.shop, points_balance=2**31 - 1 - 999_999)
    session.commit()
    response = _adjust(client, shop_a.headers["owner"], rich.id, 1_000_000)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "points_out_of_range"
    session.refresh(rich)
    assert rich.points_balance == 2**31 - 1 - 999_999
    assert _adjust(client, shop_a.headers["owner"], rich.id, 999_999).status_code == 201


def test_a_member_with_a_250_character_email_adjusts_and_the_audit_row_names_them_within_the_column(
        client, session, shop_a, customer_a):
    email = "a" * 240 + "@x.example"
    assert len(email) == 250
    member = make_staff(session, shop_a.shop, "support", email=email)
    session.commit()
    me = cookie_login(client, email, STAFF_PASSWORD)
    assert me["actor"].startswith(f"staff:{member.id}:aaaa") and len(me["actor"]) <= 200

    response = client.post(f"{API}/customers/{customer_a.id}/adjustments", base_url="https://lojal.test",
                           headers={"X-CSRF-Token": me["csrf_token"]}, json={"points": 30, "reason": "goodwill"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["points_balance"] == 30
    audit = client.get(f"{API}/audit-log", query_string={"customer_id": customer_a.id},
                       headers=shop_a.headers["viewer"]).get_json()["items"]
    assert [(a["action"], a["actor"]) for a in audit] == [("points.adjust", me["actor"])]
    # Two members whose long emails share their first 180 characters stay told apart (by id).
    twin = make_staff(session, shop_a.shop, "support", email=email[:-len("@x.example")] + "@y.example")
    assert staff_actor(twin) != staff_actor(member) and len(staff_actor(twin)) <= 200
