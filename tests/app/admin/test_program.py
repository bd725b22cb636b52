"""Program configuration: settings, earn rules, rewards, tiers, referral settings, win-back."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from app.models import AuditLog, EarnRule, Reward, Shop, Tier
from tests.app.admin.conftest import API


def _audit_actions(session, shop_id):
    return [row.action for row in session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_id)
                                                  .order_by(AuditLog.id))]


def test_settings_change_is_validated_by_the_program_schema_stored_and_audited(client, session, shop_a):
    owner = shop_a.headers["owner"]
    response = client.patch(f"{API}/settings", json={"pending_days": 14, "rounding": "nearest"}, headers=owner)
    assert response.status_code == 200
    body = response.get_json()
    assert body["pending_days"] == 14 and body["rounding"] == "nearest" and body["earn_basis"] == "subtotal"
    session.expire_all()
    assert session.get(Shop, shop_a.shop.id).settings == {"pending_days": 14, "rounding": "nearest"}
    assert "settings.update" in _audit_actions(session, shop_a.shop.id)


def test_a_settings_audit_row_says_what_each_changed_value_was_before(client, session, shop_a):
    owner = shop_a.headers["owner"]
    assert client.patch(f"{API}/settings", json={"pending_days": 14}, headers=owner).status_code == 200
    assert client.patch(f"{API}/settings", json={"pending_days": 30, "expiry_months": 12}, headers=owner).status_code == 200
    rows = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id,
                                                  AuditLog.action == "settings.update").order_by(AuditLog.id)).all()
    since = session.get(Shop, shop_a.shop.id).settings["expiry_since"]  # switching expiry on sets it
    assert [r.details for r in rows] == [
        {"changes": {"pending_days": 14}, "before": {"pending_days": 0}},  # the default, never stored
        {"changes": {"pending_days": 30, "expiry_months": 12, "expiry_since": since},
         "before": {"pending_days": 14, "expiry_months": None, "expiry_since": None}},
    ]


def test_expiry_since_is_shown_but_only_the_save_sets_it(client, session, shop_a):
    owner = shop_a.headers["owner"]
    refused = client.patch(f"{API}/settings", json={"expiry_since": "2020-01-01T00:00:00+00:00"}, headers=owner)
    assert refused.status_code == 422 and set(refused.get_json()["error"]["fields"]) == {"expiry_since"}
    assert client.get(f"{API}/settings", headers=owner).get_json()["expiry_since"] is None
    before = datetime.now(UTC)
    body = client.patch(f"{API}/settings", json={"expiry_months": 12}, headers=owner).get_json()
    assert before <= datetime.fromisoformat(body["expiry_since"]) <= datetime.now(UTC)
    assert client.get(f"{API}/settings", headers=owner).get_json()["expiry_since"] == body["expiry_since"]


def test_invalid_settings_are_422_with_field_details_and_change_nothing(client, session, shop_a):
    for change in ({"pending_days": -1}, {"rounding": "sideways"}, {"brand_logo_url": "http://x.example/l.png"},
                   {"no_such_setting": 1}, {"support_adjust_limit_per_adjustment": -5}):
        response = client.patch(f"{API}/settings", json=change, headers=shop_a.headers["owner"])
        assert response.status_code == 422 and set(response.get_json()["error"]["fields"]) == set(change), change
    session.expire_all()
    assert session.get(Shop, shop_a.shop.id).settings == {}


def test_malformed_json_is_400(client, shop_a):
    response = client.patch(f"{API}/settings", data="{not json", content_type="application/json",
                            headers=shop_a.headers["owner"])
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "malformed_json"
    listed = client.patch(f"{API}/settings", json=[1, 2], headers=shop_a.headers["owner"])
    assert listed.status_code == 422


def test_rewards_refuse_negative_costs_and_impossible_percentages(client, session, shop_a):
    owner = shop_a.headers["owner"]
    bad = [
        {"name": "x", "kind": "fixed_amount", "points_cost": -5, "value": "5"},
        {"name": "x", "kind": "fixed_amount", "points_cost": 0, "value": "5"},
        {"name": "x", "kind": "percentage", "points_cost": 100, "value": "150"},
        {"name": "x", "kind": "percentage", "points_cost": 100, "value": "0.5"},
        {"name": "x", "kind": "fixed_amount", "points_cost": 100, "value": "-1"},
        {"name": "x", "kind": "fixed_amount", "points_cost": 100, "value": "1.00001"},
        {"name": "x", "kind": "fixed_amount", "points_cost": 100},
        {"name": "x", "kind": "free_product", "points_cost": 100},
    ]
    before = session.scalar(select(Reward.id).where(Reward.shop_id == shop_a.shop.id).order_by(Reward.id.desc()))
    for body in bad:
        response = client.post(f"{API}/rewards", json=body, headers=owner)
        assert response.status_code == 422 and response.get_json()["error"]["fields"], body
    assert session.scalar(select(Reward.id).where(Reward.shop_id == shop_a.shop.id)
                          .order_by(Reward.id.desc())) == before
    created = client.post(f"{API}/rewards", json={"name": "15% off", "kind": "percentage", "points_cost": 1500,
                                                  "value": "15"}, headers=owner)
    assert created.status_code == 201 and created.get_json()["value"] == "15.0000"


def test_reward_crud_round_trip_is_audited(client, session, shop_a):
    owner = shop_a.headers["owner"]
    body = {"name": "Tote bag", "kind": "free_product", "points_cost": 800, "product_ref": "sku-tote"}
    reward_id = client.post(f"{API}/rewards", json=body, headers=owner).get_json()["id"]
    replaced = client.put(f"{API}/rewards/{reward_id}", json={**body, "points_cost": 900}, headers=owner)
    assert replaced.status_code == 200 and replaced.get_json()["points_cost"] == 900
    assert client.get(f"{API}/rewards/{reward_id}", headers=shop_a.headers["viewer"]).get_json()["name"] == "Tote bag"
    assert client.delete(f"{API}/rewards/{reward_id}", headers=owner).status_code == 204
    assert client.get(f"{API}/rewards/{reward_id}", headers=owner).status_code == 404
    assert _audit_actions(session, shop_a.shop.id)[-3:] == ["reward.create", "reward.update", "reward.delete"]


def test_tier_thresholds_must_strictly_ascend_with_non_decreasing_multipliers(client, session, shop_a):
    owner = shop_a.headers["owner"]  # default tiers: Bronze 0 ×1, Silver 500 ×1.25, Gold 1500 ×1.5
    same_threshold = client.post(f"{API}/tiers", json={"name": "Copper", "threshold": "500", "multiplier": "1.3"},
                                 headers=owner)
    assert same_threshold.status_code == 422 and "threshold" in same_threshold.get_json()["error"]["fields"]
    inverted = client.post(f"{API}/tiers", json={"name": "Platinum", "threshold": "3000", "multiplier": "1.2"},
                           headers=owner)
    assert inverted.status_code == 422 and "multiplier" in inverted.get_json()["error"]["fields"]
    for body in ({"name": "Neg", "threshold": "-1"}, {"name": "Huge", "threshold": "9000", "multiplier": "11"},
                 {"name": "Tiny", "threshold": "9000", "multiplier": "0.5"}, {"name": "silver", "threshold": "800"}):
        assert client.post(f"{API}/tiers", json=body, headers=owner).status_code == 422, body
    ok = client.post(f"{API}/tiers", json={"name": "Platinum", "threshold": "3000", "multiplier": "2"}, headers=owner)
    assert ok.status_code == 201
    gold = session.scalars(select(Tier).where(Tier.shop_id == shop_a.shop.id, Tier.name == "Gold")).one()
    # Moving Gold above Platinum would invert the multipliers: refused, nothing stored.
    moved = client.put(f"{API}/tiers/{gold.id}", json={"name": "Gold", "threshold": "4000", "multiplier": "1.5"},
                       headers=owner)
    assert moved.status_code == 422
    session.expire_all()
    assert str(session.get(Tier, gold.id).threshold) == "1500.0000"


def test_earn_rules_check_each_kind_and_refuse_duplicates(client, shop_a):
    owner = shop_a.headers["owner"]
    assert client.post(f"{API}/earn-rules", json={"kind": "nth_order", "name": "10th", "points": 500},
                       headers=owner).status_code == 422  # every_n missing
    assert client.post(f"{API}/earn-rules", json={"kind": "custom", "name": "Review", "points": -1,
                                                  "action_key": "review"}, headers=owner).status_code == 422
    created = client.post(f"{API}/earn-rules", json={"kind": "custom", "name": "Review", "points": 50,
                                                     "action_key": "review"}, headers=owner)
    assert created.status_code == 201
    again = client.post(f"{API}/earn-rules", json={"kind": "custom", "name": "Review 2", "points": 60,
                                                   "action_key": "review"}, headers=owner)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "earn_rule_exists"
    rate = client.post(f"{API}/earn-rules", json={"kind": "order", "name": "Double", "points_per_unit": "5000"},
                       headers=owner)
    assert rate.status_code == 422


def test_referral_settings_update_the_rules_and_the_cap(client, session, shop_a):
    response = client.put(f"{API}/referral-settings", json={"advocate_points": 700, "friend_points": 300,
                                                            "weekly_cap": 4}, headers=shop_a.headers["owner"])
    assert response.get_json() == {"advocate_points": 700, "friend_points": 300, "weekly_cap": 4}
    rule = session.scalars(select(EarnRule).where(EarnRule.shop_id == shop_a.shop.id,
                                                  EarnRule.kind == "referral_advocate")).one()
    session.refresh(rule)
    assert rule.points == 700
    assert client.put(f"{API}/referral-settings", json={"advocate_points": -1, "friend_points": 0, "weekly_cap": 1},
                      headers=shop_a.headers["owner"]).status_code == 422


def test_a_referral_settings_audit_row_says_what_the_rewards_and_cap_were_before(client, session, shop_a):
    owner = shop_a.headers["owner"]
    for values in ({"advocate_points": 700, "friend_points": 300, "weekly_cap": 4},
                   {"advocate_points": 5000, "friend_points": 300, "weekly_cap": 4}):
        assert client.put(f"{API}/referral-settings", json=values, headers=owner).status_code == 200
    last = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop_a.shop.id,
                                                  AuditLog.action == "referral_settings.update")
                           .order_by(AuditLog.id.desc())).first()
    assert last.actor and last.details == {"advocate_points": 5000, "friend_points": 300, "weekly_cap": 4,
                                           "before": {"advocate_points": 700, "friend_points": 300, "weekly_cap": 4}}


def test_winback_campaign_settings_and_results(client, shop_a):
    response = client.patch(f"{API}/winback", json={"winback_min_days": 45, "winback_incentive_points": 300},
                            headers=shop_a.headers["owner"])
    assert response.status_code == 200
    body = client.get(f"{API}/winback", headers=shop_a.headers["viewer"]).get_json()
    assert body["settings"]["winback_min_days"] == 45 and body["settings"]["winback_incentive_points"] == 300
    assert body["results"]["enrolled"] == 0 and body["results"]["recovered_revenue"] == "0"
    assert client.patch(f"{API}/winback", json={"pending_days": 3}, headers=shop_a.headers["owner"]).status_code == 422


def test_winback_results_period_comes_from_the_query_string(client, shop_a):
    # A query string carries text: ?days=30 is the documented way to ask, not a type error.
    viewer = shop_a.headers["viewer"]
    response = client.get(f"{API}/winback?days=30", headers=viewer)
    assert response.status_code == 200, response.get_json()
    assert client.get(f"{API}/winback?days=0", headers=viewer).status_code == 422
    assert client.get(f"{API}/winback?days=abc", headers=viewer).status_code == 422


def test_shop_b_cannot_touch_shop_a_program_items(client, session, shop_a, shop_b):
    headers = shop_b.headers["owner"]
    for model, path in ((EarnRule, "earn-rules"), (Reward, "rewards"), (Tier, "tiers")):
        item = session.scalars(select(model).where(model.shop_id == shop_a.shop.id)).first()
        assert client.get(f"{API}/{path}/{item.id}", headers=headers).status_code == 404
        assert client.delete(f"{API}/{path}/{item.id}", headers=headers).status_code == 404
        listed = client.get(f"{API}/{path}", headers=headers).get_json()["items"]
        assert item.id not in [i["id"] for i in listed]
        session.expire_all()
        assert session.get(model, item.id) is not None
    tier = session.scalars(select(Tier).where(Tier.shop_id == shop_a.shop.id)).first()
    assert client.put(f"{API}/tiers/{tier.id}", json={"name": "Hacked", "threshold": "77"},
                      headers=headers).status_code == 404


def test_winback_holdout_percent_is_a_whole_number_from_0_to_50(client, session, shop_a):
    owner = shop_a.headers["owner"]
    for path in ("/winback", "/settings"):
        for bad in (-1, 51, 12.5, "20", True, None):
            response = client.patch(f"{API}{path}", json={"winback_holdout_percent": bad}, headers=owner)
            assert response.status_code == 422, (path, bad)
            assert response.is_json and set(response.get_json()["error"]["fields"]) == {"winback_holdout_percent"}
    session.expire_all()
    assert "winback_holdout_percent" not in (session.get(Shop, shop_a.shop.id).settings or {})
    response = client.patch(f"{API}/winback", json={"winback_holdout_percent": 20}, headers=owner)
    assert response.status_code == 200 and response.get_json()["settings"]["winback_holdout_percent"] == 20
    assert client.get(f"{API}/settings", headers=owner).get_json()["winback_holdout_percent"] == 20


def test_winback_results_report_the_holdout_and_the_lift(client, session, shop_a):
    from datetime import UTC, datetime, timedelta

    from app.models import WinbackEnrollment
    from tests.factories import make_customer

    now = datetime.now(UTC) - timedelta(days=1)
    for holdout, status in ((False, "converted"), (False, "completed"), (True, "converted"), (True, "completed"),
                            (True, "completed"), (True, "completed")):
        customer = make_customer(session, shop_a.shop)
        session.add(WinbackEnrollment(shop_id=shop_a.shop.id, customer_id=customer.id, status=status, holdout=holdout,
                                      holdout_percent=50, returned=status == "converted", enrolled_at=now,
                                      step1_sent_at=now,
                                      recovered_revenue=40 if status == "converted" else 0))
    session.commit()
    before = client.get(f"{API}/winback", headers=shop_a.headers["viewer"]).get_json()["results"]
    assert (before["enrolled"], before["converted"], before["conversion_rate"], before["recovered_revenue"]) == (
        2, 1, 0.5, "40.0000")
    assert (before["holdout_enrolled"], before["holdout_converted"], before["holdout_conversion_rate"],
            before["holdout_recovered_revenue"]) == (4, 1, 0.25, "40.0000")
    assert (before["lift_treated"], before["lift_treated_ordered"], before["lift_holdout"]) == (2, 1, 4)
    assert before["lift_points"] == 25.0
    # 50 % vs 25 %, adjusted (Agresti–Caffo) 2/4 vs 2/6: 16.67 ± 1.96 x sqrt(0.25/4 + (2/9)/6)
    # = ± 61.84 points, so not measurable yet.
    assert (before["lift_ci_low"], before["lift_ci_high"], before["lift_significant"]) == (-45.17, 78.5, False)
    assert "lift_strata" not in before


def test_winback_results_lift_is_stratified_by_holdout_percent_with_its_interval(client, session, shop_a):
    # 50 % held out, 1 in 10 back in both groups; then 10 %, 1 in 2 back in both: no lift in
    # either period, though pooled it is 50/140 − 10/60 = +19.05 points.
    from datetime import UTC, datetime, timedelta

    from tests.factories import make_winback_enrollments

    at = datetime.now(UTC) - timedelta(days=1)
    for percent, treated, treated_back, held, held_back in ((50, 50, 5, 50, 5), (10, 90, 45, 10, 5)):
        for holdout, n, back in ((False, treated, treated_back), (True, held, held_back)):
            make_winback_enrollments(session, shop_a.shop, back, enrolled_at=at, holdout=holdout,
                                     holdout_percent=percent, returned=True)
            make_winback_enrollments(session, shop_a.shop, n - back, enrolled_at=at, holdout=holdout,
                                     holdout_percent=percent)
    session.commit()
    results = client.get(f"{API}/winback", headers=shop_a.headers["viewer"]).get_json()["results"]
    assert (results["lift_treated"], results["lift_treated_ordered"], results["lift_holdout"],
            results["lift_holdout_ordered"]) == (140, 50, 60, 10)
    assert results["lift_points"] == 0.0 and results["lift_significant"] is False
    assert results["lift_ci_low"] < 0 < results["lift_ci_high"]


def test_winback_results_without_a_holdout_have_a_null_lift_and_interval(client, shop_a):
    results = client.get(f"{API}/winback", headers=shop_a.headers["viewer"]).get_json()["results"]
    assert (results["lift_points"], results["lift_ci_low"], results["lift_ci_high"], results["lift_significant"]) == (
        None, None, None, False)


def test_a_trailing_newline_does_not_pass_the_origin_and_colour_patterns(client, session, shop_a):
    # `$` matches before a final newline: a storefront origin stored with one would go into the
    # referral redirect's Location header and every storefront link (a 500 on /r/<code>).
    for change in ({"storefront_origins": ["https://www.example.com\n"]}, {"brand_color": "#1a2b3c\n"}):
        response = client.patch(f"{API}/settings", json=change, headers=shop_a.headers["owner"])
        assert response.status_code == 422 and set(response.get_json()["error"]["fields"]) == set(change), change
    session.expire_all()
    assert session.get(Shop, shop_a.shop.id).settings == {}


def test_a_custom_rules_action_key_with_a_trailing_newline_is_refused_not_a_second_rule(client, shop_a):
    owner = shop_a.headers["owner"]
    assert client.post(f"{API}/earn-rules", json={"kind": "custom", "name": "Review", "points": 50,
                                                  "action_key": "review"}, headers=owner).status_code == 201
    twin = client.post(f"{API}/earn-rules", json={"kind": "custom", "name": "Review 2", "points": 60,
                                                  "action_key": "review\n"}, headers=owner)
    assert twin.status_code == 422 and set(twin.get_json()["error"]["fields"]) == {"action_key"}
