"""POST /widget/v1/me/redemptions and GET /me/redemptions/<id>: 201 with the code when it was
issued at once (in-process jobs), 202 while a worker creates it; idempotent on the key; 400,
404, 409, 413 and 422 as the contract says; never another customer's redemption."""
from __future__ import annotations

import contextlib
import io

import pytest
from rq import SimpleWorker
from sqlalchemy import func, select

from app import create_app
from app.models import Customer, LedgerEntry, Redemption, Reward
from jobs.worker import run_worker
from tests.conftest import app_session, test_config
from tests.widgets.helpers import bearer, client_for, shopper, token, widget_shop


@pytest.fixture(scope="module")
def inproc_app(app):
    return create_app(test_config(RUN_JOBS_IN_PROCESS=True))


@pytest.fixture(scope="module")
def queued_app(app):
    return create_app(test_config(RUN_JOBS_IN_PROCESS=False))


@contextlib.contextmanager
def serving(flask_app):
    """(session, client) for `flask_app`."""
    with app_session(flask_app) as session:
        yield session, client_for(flask_app)


def _setup(session, points=700):
    shop, secret = widget_shop(session)
    kari = shopper(session, shop, points=points)
    rewards = session.scalars(select(Reward).where(Reward.shop_id == shop.id).order_by(Reward.points_cost)).all()
    return shop, secret, kari, {r.points_cost: r for r in rewards}


def _redeem(client, shop, secret, customer, reward_id, key="key-1"):
    headers = bearer(token(shop, secret, customer), **({"Idempotency-Key": key} if key else {}))
    return client.post("/widget/v1/me/redemptions", json={"reward_id": reward_id}, headers=headers)


def _poll(client, shop, secret, customer, redemption_id):
    return client.get(f"/widget/v1/me/redemptions/{redemption_id}", headers=bearer(token(shop, secret, customer)))


def _balance(session, customer) -> int:
    session.expire_all()
    return session.get(Customer, customer.id).points_balance


def test_redeeming_issues_the_code_at_once_in_process_201(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem(client, shop, secret, kari, rewards[500].id)
        assert resp.status_code == 201
        body = resp.get_json()
        redemption = session.get(Redemption, body["id"])
        assert body["status"] == "issued" and body["code"] == redemption.code and body["code"].startswith("LOJAL-")
        assert body["reward"] == {"id": rewards[500].id, "name": "5 off your order"}
        assert body["points_cost"] == 500 and body["points_balance"] == 200 == _balance(session, kari)
        assert body["expires_at"] is not None
        # The same key again: the same redemption, status and body; nothing debited twice.
        again = _redeem(client, shop, secret, kari, rewards[500].id)
        assert again.status_code == 201 and again.get_json() == body and _balance(session, kari) == 200
        polled = _poll(client, shop, secret, kari, body["id"])
        assert polled.status_code == 200 and polled.get_json() == body


def test_with_workers_the_answer_is_202_then_the_code_appears_on_the_get(queued_app):
    with serving(queued_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem(client, shop, secret, kari, rewards[300].id)
        assert resp.status_code == 202
        body = resp.get_json()
        assert body["status"] == "pending" and body["code"] is None and body["points_balance"] == 400
        replay = _redeem(client, shop, secret, kari, rewards[300].id)
        assert replay.status_code == 202 and replay.get_json() == body
        run_worker(queued_app, burst=True, worker_class=SimpleWorker)
        session.expire_all()  # requests here share the test's session; a real request starts fresh
        polled = _poll(client, shop, secret, kari, body["id"])
        assert polled.status_code == 200
        assert polled.get_json()["status"] == "issued" and polled.get_json()["code"].startswith("LOJAL-")
        assert _balance(session, kari) == 400


def test_insufficient_points_is_409_and_debits_nothing(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session, points=400)
        resp = _redeem(client, shop, secret, kari, rewards[1000].id)
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "insufficient_points"
        assert _balance(session, kari) == 400
        assert session.scalar(select(func.count()).select_from(Redemption).where(Redemption.customer_id == kari.id)) == 0


def test_a_refusal_reaches_the_shopper_in_their_language(inproc_app):
    # The widget shows the API's message as it comes: a Norwegian shopper reads Norwegian.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session, points=400)
        headers = bearer(token(shop, secret, kari), **{"Idempotency-Key": "nb-1", "Accept-Language": "nb-NO, en;q=0.5"})
        short = client.post("/widget/v1/me/redemptions", json={"reward_id": rewards[1000].id}, headers=headers)
        assert short.status_code == 409 and short.get_json()["error"] == {
            "code": "insufficient_points", "message": "Du har ikke nok poeng til denne belønningen ennå."}
        gone = client.post("/widget/v1/me/redemptions?locale=sv", json={"reward_id": 99_999_999},
                           headers={**headers, "Idempotency-Key": "sv-1"})
        assert gone.get_json()["error"]["message"] == "Den här belöningen är inte längre tillgänglig."
        english = _redeem(client, shop, secret, kari, rewards[1000].id, key="en-1")
        assert english.get_json()["error"]["message"] == "You do not have enough points for this reward yet."
        assert _balance(session, kari) == 400


def test_unknown_inactive_or_foreign_rewards_are_422(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        _, _, _, other_rewards = _setup(session)
        rewards[300].active = False
        session.commit()
        for reward_id in (rewards[300].id, other_rewards[300].id, 99_999_999):
            resp = _redeem(client, shop, secret, kari, reward_id, key=f"k-{reward_id}")
            assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "reward_unavailable"
        assert _balance(session, kari) == 700


def test_a_missing_idempotency_key_is_400_and_bad_bodies_are_422(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem(client, shop, secret, kari, rewards[300].id, key=None)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "idempotency_key_required"
        headers = bearer(token(shop, secret, kari), **{"Idempotency-Key": "k"})
        for body in ({}, {"reward_id": "300"}, {"reward_id": None}, []):
            resp = client.post("/widget/v1/me/redemptions", json=body, headers=headers)
            assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_failed", body
        broken = client.post("/widget/v1/me/redemptions", data="{nope", content_type="application/json",
                             headers=headers)
        assert broken.status_code == 400 and broken.get_json()["error"]["code"] == "malformed_json"
        reused = _redeem(client, shop, secret, kari, rewards[300].id, key="same")
        other = _redeem(client, shop, secret, kari, rewards[500].id, key="same")
        assert reused.status_code == 201 and other.status_code == 422
        assert other.get_json()["error"]["code"] == "idempotency_key_reused"
        assert _balance(session, kari) == 400


def test_an_over_long_idempotency_key_is_400_like_a_missing_one_and_200_characters_are_fine(inproc_app):
    # One code, one status (the contract: idempotency_key_required is 400), before anything is read.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem(client, shop, secret, kari, rewards[300].id, key="k" * 201)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "idempotency_key_required"
        assert _balance(session, kari) == 700
        assert _redeem(client, shop, secret, kari, rewards[300].id, key="k" * 200).status_code == 201


def test_an_oversized_body_is_413(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        headers = bearer(token(shop, secret, kari), **{"Idempotency-Key": "big"})
        resp = client.post("/widget/v1/me/redemptions", data='{"reward_id": 1, "x": "' + "a" * 5000 + '"}',
                           content_type="application/json", headers=headers)
        assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "request_entity_too_large"
        assert _balance(session, kari) == 700


def test_an_oversized_body_streamed_without_a_length_is_413_too_not_cut_off_and_redeemed(inproc_app):
    # Chunked (no Content-Length): the stream stops at the cap, and a body whose first 4 KB are
    # a complete JSON object would be read as that object.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        for n, body in enumerate((b'{"reward_id": %d}' % rewards[300].id + b" " * 5000,
                                  b'{"reward_id": 1, "x": "' + b"a" * 5000 + b'"}')):
            headers = bearer(token(shop, secret, kari), **{"Idempotency-Key": f"chunked-{n}",
                                                           "Content-Type": "application/json",
                                                           "Transfer-Encoding": "chunked"})
            resp = client.post("/widget/v1/me/redemptions", input_stream=io.BytesIO(body), headers=headers,
                               environ_overrides={"wsgi.input_terminated": True})
            assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "request_entity_too_large", n
        assert _balance(session, kari) == 700
        # Within the cap, a streamed body is read as any other.
        headers = bearer(token(shop, secret, kari), **{"Idempotency-Key": "chunked-ok",
                                                       "Content-Type": "application/json",
                                                       "Transfer-Encoding": "chunked"})
        resp = client.post("/widget/v1/me/redemptions", input_stream=io.BytesIO(b'{"reward_id": %d}' % rewards[300].id),
                           headers=headers, environ_overrides={"wsgi.input_terminated": True})
        assert resp.status_code == 201 and _balance(session, kari) == 400


def test_another_customers_redemption_is_404_and_keys_are_per_customer(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        ola = shopper(session, shop, points=700)
        karis = _redeem(client, shop, secret, kari, rewards[300].id, key="shared").get_json()
        resp = _poll(client, shop, secret, ola, karis["id"])
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "redemption_not_found"
        # Ola using the same key makes Ola's own redemption, never returns Kari's (or her code).
        olas = _redeem(client, shop, secret, ola, rewards[300].id, key="shared").get_json()
        assert olas["id"] != karis["id"] and olas["code"] != karis["code"]
        assert _balance(session, kari) == 400 and _balance(session, ola) == 400
        debits = session.scalars(select(LedgerEntry.customer_id).where(LedgerEntry.kind == "redeem",
                                                                        LedgerEntry.shop_id == shop.id)).all()
        assert sorted(debits) == sorted([kari.id, ola.id])


def test_a_redemption_of_another_shop_is_404_even_with_a_valid_token(inproc_app):
    with serving(inproc_app) as (session, client):
        shop_a, secret_a, kari, rewards_a = _setup(session)
        shop_b, secret_b, ola, rewards_b = _setup(session)
        olas = _redeem(client, shop_b, secret_b, ola, rewards_b[300].id).get_json()
        resp = _poll(client, shop_a, secret_a, kari, olas["id"])
        assert resp.status_code == 404


def test_a_reward_id_beyond_a_bigint_is_422_not_a_database_error(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        for reward_id in (2**63, 10**30):
            resp = _redeem(client, shop, secret, kari, reward_id, key=f"huge-{reward_id}")
            assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "validation_failed", reward_id
        assert _balance(session, kari) == 700


def test_polling_a_redemption_id_beyond_a_bigint_is_404_not_a_database_error(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        for redemption_id in (2**63, 10**30):
            resp = _poll(client, shop, secret, kari, redemption_id)
            assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "redemption_not_found"


class _FlakyPlatform:
    """A platform whose discount API is down for now (a 503): the caller should retry."""

    name = "flaky"

    def parse_event(self, shop, topic, payload, headers):
        return []

    def issue_discount(self, shop, redemption, customer):
        from integrations.base import TransientPlatformError

        raise TransientPlatformError("503 from the platform")

    def revoke_discount(self, shop, redemption):
        return False  # the 503 made no code


def test_in_process_a_transient_platform_failure_gives_the_points_back(inproc_app, monkeypatch):
    # In-process (no Redis) nothing retries the job and no sweeper runs: its one attempt is the
    # last, so the points must come back rather than stay debited with no code, for ever.
    from integrations import registry

    monkeypatch.setitem(registry.ADAPTERS, "flaky", _FlakyPlatform())
    with serving(inproc_app) as (session, client):
        shop, secret = widget_shop(session, platform="flaky")
        kari = shopper(session, shop, points=700)
        reward = session.scalars(select(Reward).where(Reward.shop_id == shop.id, Reward.points_cost == 300)).one()
        resp = _redeem(client, shop, secret, kari, reward.id)
        assert resp.status_code == 202
        assert resp.get_json()["status"] == "failed" and resp.get_json()["code"] is None
        assert _balance(session, kari) == 700


# --- the cost the widget showed (points_cost) ---------------------------------------------

def _redeem_at(client, shop, secret, customer, reward_id, points_cost, key="key-1", **headers):
    headers = bearer(token(shop, secret, customer), **{"Idempotency-Key": key, **headers})
    return client.post("/widget/v1/me/redemptions", json={"reward_id": reward_id, "points_cost": points_cost},
                       headers=headers)


def _redemptions(session, customer) -> int:
    return session.scalar(select(func.count()).select_from(Redemption).where(Redemption.customer_id == customer.id))


def _reprice(session, reward, cost) -> None:
    """The merchant changes the reward's cost between the widget showing it and the click."""
    reward.points_cost = cost
    session.commit()


@pytest.mark.parametrize("new_cost", [600, 400], ids=["raised", "lowered"])
def test_a_cost_changed_since_it_was_shown_is_409_with_the_current_cost_and_debits_nothing(inproc_app, new_cost):
    # Lowered too: the shopper confirms the price they will pay, whichever way it moved.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        reward = rewards[500]
        _reprice(session, reward, new_cost)
        resp = _redeem_at(client, shop, secret, kari, reward.id, 500)
        assert resp.status_code == 409
        assert resp.get_json()["error"] == {
            "code": "reward_cost_changed", "points_cost": new_cost,
            "message": f"This reward now costs {new_cost} points. Check the new price and redeem again."}
        assert _balance(session, kari) == 700 and _redemptions(session, kari) == 0
        assert session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.customer_id == kari.id, LedgerEntry.kind == "redeem")) == 0
        # Redeeming again at the price now shown goes through, at that price.
        again = _redeem_at(client, shop, secret, kari, reward.id, new_cost, key="key-2")
        assert again.status_code == 201 and again.get_json()["points_cost"] == new_cost
        assert _balance(session, kari) == 700 - new_cost


def test_the_cost_shown_when_it_is_still_the_cost_redeems_201(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem_at(client, shop, secret, kari, rewards[500].id, 500)
        assert resp.status_code == 201 and resp.get_json()["points_cost"] == 500
        assert _balance(session, kari) == 200


def test_the_cost_changed_refusal_is_in_the_shoppers_language_with_their_number_format(inproc_app):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session, points=5000)
        _reprice(session, rewards[500], 1250)
        resp = _redeem_at(client, shop, secret, kari, rewards[500].id, 500, **{"Accept-Language": "nb-NO"})
        assert resp.status_code == 409 and resp.get_json()["error"] == {
            "code": "reward_cost_changed", "points_cost": 1250,
            "message": "Denne belønningen koster nå 1\u00a0250 poeng. Sjekk den nye prisen og løs inn på nytt."}
        assert _balance(session, kari) == 5000


def test_a_replayed_key_returns_the_original_redemption_whatever_points_cost_says(inproc_app):
    # The idempotency rule comes first: the retry of a click that went through (its answer lost)
    # gets its redemption back, even if the merchant has repriced the reward since.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        reward = rewards[500]
        first = _redeem_at(client, shop, secret, kari, reward.id, 500)
        assert first.status_code == 201
        _reprice(session, reward, 600)
        for shown in (500, 600, 1):
            again = _redeem_at(client, shop, secret, kari, reward.id, shown)
            assert again.status_code == 201 and again.get_json() == first.get_json(), shown
        assert _balance(session, kari) == 200 and _redemptions(session, kari) == 1


def test_without_points_cost_the_current_cost_is_debited_as_before(inproc_app):
    # Headless callers that send no points_cost keep today's behaviour.
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        _reprice(session, rewards[500], 600)
        resp = _redeem(client, shop, secret, kari, rewards[500].id)
        assert resp.status_code == 201 and resp.get_json()["points_cost"] == 600
        assert _balance(session, kari) == 100


@pytest.mark.parametrize("points_cost", ["500", 500.0, 500.5, True, None, 0, -500, [500], {"n": 500}])
def test_a_points_cost_that_is_not_a_positive_integer_is_422_and_debits_nothing(inproc_app, points_cost):
    with serving(inproc_app) as (session, client):
        shop, secret, kari, rewards = _setup(session)
        resp = _redeem_at(client, shop, secret, kari, rewards[500].id, points_cost)
        assert resp.status_code == 422
        error = resp.get_json()["error"]
        assert error["code"] == "validation_failed" and list(error["fields"]) == ["points_cost"]
        assert _balance(session, kari) == 700 and _redemptions(session, kari) == 0
