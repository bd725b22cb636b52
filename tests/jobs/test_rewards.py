"""issue_discount: a redemption becomes a code; a platform that fails for good gives the points back."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job

from app.extensions import redis_connection
from app.loyalty.adjustments import adjust_points
from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemptions import redeem_reward
from app.models import Customer, LedgerEntry, Redemption, Reward
from integrations import registry
from integrations.base import DiscountAlreadyUsed, PermanentPlatformError, TransientPlatformError
from jobs.dispatch import dispatch
from jobs.queues import enqueue, queue
from jobs.rewards import sweep_pending_redemptions
from tests.factories import make_customer, make_shop

NOW = datetime(2026, 3, 1, tzinfo=UTC)


class RefusingPlatform:
    """A platform adapter whose discount API answers with `error` (stands in at the client boundary)."""

    name = "refusing"

    def __init__(self, error: Exception):
        self.error = error
        self.calls = 0

    def parse_event(self, shop, topic, payload, headers):
        return []

    def issue_discount(self, shop, redemption, customer):
        self.calls += 1
        raise self.error

    def revoke_discount(self, shop, redemption):
        return False  # it never made a code


class SavesThenTimesOut(RefusingPlatform):
    """Creates the code, then the answer is lost (a timeout, a 5xx after saving), as a platform can."""

    name = "saves-then-times-out"

    def __init__(self, revoke_error: Exception | None = None):
        super().__init__(TransientPlatformError("timeout"))
        self.codes: set[str] = set()
        self.revoke_error = revoke_error

    def issue_discount(self, shop, redemption, customer):
        self.codes.add(redemption.code)
        return super().issue_discount(shop, redemption, customer)

    def revoke_discount(self, shop, redemption):
        if self.revoke_error is not None:
            raise self.revoke_error
        found = redemption.code in self.codes
        self.codes.discard(redemption.code)
        return found


def _redeem(session, platform="demo"):
    shop = make_shop(session, platform=platform)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 800, reason="seed", actor="staff:test", now=NOW)
    reward = session.query(Reward).filter_by(shop_id=shop.id, points_cost=500).one()
    result = redeem_reward(session, shop.id, customer.id, reward.id, "checkout-1", NOW)
    session.commit()
    return shop, customer, result


def test_redemption_becomes_an_issued_code(wsession, run_jobs):
    shop, customer, result = _redeem(wsession)
    dispatch(result.intents)
    run_jobs()
    wsession.expire_all()
    redemption = wsession.get(Redemption, result.redemption.id)
    assert redemption.status == "issued"
    assert redemption.platform_discount_id == f"demo-discount-{redemption.code}"
    assert wsession.get(Customer, customer.id).points_balance == 300


def test_permanent_platform_refusal_gives_the_points_back_once(wsession, run_jobs, monkeypatch):
    platform = RefusingPlatform(PermanentPlatformError("discount rejected: invalid customer"))
    monkeypatch.setitem(registry.ADAPTERS, "refusing", platform)
    shop, customer, result = _redeem(wsession, platform="refusing")
    dispatch(result.intents)
    run_jobs()
    dispatch(result.intents)  # a duplicated job
    run_jobs()
    wsession.expire_all()
    redemption = wsession.get(Redemption, result.redemption.id)
    assert redemption.status == "failed" and "invalid customer" in redemption.failure_reason
    assert wsession.get(Customer, customer.id).points_balance == 800
    reversals = wsession.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").count()
    assert reversals == 1 and find_balance_drift(wsession, shop.id) == []


def test_transient_failure_is_retried_later_and_keeps_the_debit(wsession, run_jobs, monkeypatch, worker_app):
    platform = RefusingPlatform(TransientPlatformError("503 from platform"))
    monkeypatch.setitem(registry.ADAPTERS, "refusing", platform)
    shop, customer, result = _redeem(wsession, platform="refusing")
    job = enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards")
    run_jobs()
    fetched = Job.fetch(job.id, connection=redis_connection.client(worker_app), serializer=queue("rewards").serializer)
    assert fetched.get_status() == "scheduled"  # RQ retries it after the back-off
    assert fetched.retries_left == worker_app.config["JOB_RETRIES"] - 1
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "pending"
    assert wsession.get(Customer, customer.id).points_balance == 300


def test_transient_failure_on_the_last_attempt_gives_the_points_back(wsession, run_jobs, monkeypatch):
    platform = RefusingPlatform(TransientPlatformError("timeout"))
    monkeypatch.setitem(registry.ADAPTERS, "refusing", platform)
    shop, customer, result = _redeem(wsession, platform="refusing")
    enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards", retries=0)
    run_jobs()
    wsession.expire_all()
    redemption = wsession.get(Redemption, result.redemption.id)
    assert redemption.status == "failed" and "gave up after retries" in redemption.failure_reason
    assert wsession.get(Customer, customer.id).points_balance == 800


def test_giving_up_deletes_a_code_the_platform_made_before_its_answer_was_lost_then_gives_the_points_back(
        wsession, run_jobs, monkeypatch):
    platform = SavesThenTimesOut()
    monkeypatch.setitem(registry.ADAPTERS, "refusing", platform)
    shop, customer, result = _redeem(wsession, platform="refusing")
    enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards", retries=0)
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "failed"
    assert platform.codes == set()  # no live code beside the points given back
    assert wsession.get(Customer, customer.id).points_balance == 800


@pytest.mark.parametrize("revoke_error", [TransientPlatformError("timeout again"), DiscountAlreadyUsed("used once")])
def test_when_giving_up_cannot_prove_no_code_exists_the_points_stay_spent_and_it_stays_pending(
        wsession, run_jobs, monkeypatch, revoke_error):
    # A code may be live in the store (or already used): points back now could pay twice. It
    # stays pending; the sweeper's next attempt finds the code by lookup once this job expires.
    monkeypatch.setitem(registry.ADAPTERS, "refusing", SavesThenTimesOut(revoke_error))
    shop, customer, result = _redeem(wsession, platform="refusing")
    enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards", retries=0)
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "pending"
    assert wsession.get(Customer, customer.id).points_balance == 300


@pytest.mark.parametrize("status", ["issued", "failed"])
def test_job_for_a_settled_redemption_does_nothing(wsession, run_jobs, monkeypatch, status):
    platform = RefusingPlatform(PermanentPlatformError("must not be called"))
    monkeypatch.setitem(registry.ADAPTERS, "refusing", platform)
    shop, customer, result = _redeem(wsession, platform="refusing")
    wsession.get(Redemption, result.redemption.id).status = status
    wsession.commit()
    enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards")
    run_jobs()
    assert platform.calls == 0


def _age(session, redemption_id: int, minutes: int) -> None:
    session.query(Redemption).filter_by(id=redemption_id).update(
        {"created_at": datetime.now(UTC) - timedelta(minutes=minutes)})
    session.commit()


def _job_ids_for(shop, redemption) -> list[str]:
    return [j for j in queue("rewards").job_ids if j == f"issue-discount-{shop.id}-{redemption.id}"]


# Other tests may leave old pending redemptions behind; these assert about their own one only.
def test_sweeper_issues_a_redemption_whose_job_was_lost(wsession, run_jobs):
    shop, customer, result = _redeem(wsession)  # committed, never dispatched: Redis was down
    _age(wsession, result.redemption.id, minutes=5)
    assert sweep_pending_redemptions() >= 1
    assert len(_job_ids_for(shop, result.redemption)) == 1
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "issued"
    sweep_pending_redemptions()
    assert _job_ids_for(shop, result.redemption) == []  # issued: never dispatched again


def test_sweeper_leaves_fresh_redemptions_and_those_with_a_job(wsession, run_jobs):
    shop, customer, fresh = _redeem(wsession)
    sweep_pending_redemptions()
    assert _job_ids_for(shop, fresh.redemption) == []  # too recent: its own job may still be on the way
    _age(wsession, fresh.redemption.id, minutes=5)
    dispatch(fresh.intents)  # its job exists (queued, not yet run)
    sweep_pending_redemptions()
    assert len(_job_ids_for(shop, fresh.redemption)) == 1  # no second job for it


def test_a_backlog_of_redemptions_with_live_jobs_does_not_hide_a_lost_one_behind_it(wsession, run_jobs,
                                                                                    monkeypatch):
    import jobs.lost_jobs

    monkeypatch.setattr(jobs.lost_jobs, "BATCH", 1)  # the backlog: one full batch of live jobs
    busy_shop, _, waiting = _redeem(wsession)
    shop, _, lost = _redeem(wsession)
    for result in (waiting, lost):
        _age(wsession, result.redemption.id, minutes=5)
    dispatch(waiting.intents)  # its job is alive (queued behind the shop's rate limit, say)
    sweep_pending_redemptions()
    assert len(_job_ids_for(shop, lost.redemption)) == 1  # found past the first batch
    assert len(_job_ids_for(busy_shop, waiting.redemption)) == 1  # not dispatched twice


def test_sweeper_dispatches_a_cancellation_whose_job_was_lost_and_only_once(wsession, run_jobs):
    from app.loyalty.redemption_cancel import request_cancellation

    shop, customer, result = _redeem(wsession)
    wsession.get(Redemption, result.redemption.id).status = "issued"
    request_cancellation(wsession, shop.id, result.redemption.id, "staff:1:ann", "wrong reward", datetime.now(UTC))
    wsession.commit()  # committed, never dispatched: Redis was down
    revoke_id = f"revoke-discount-{shop.id}-{result.redemption.id}"
    sweep_pending_redemptions()
    assert revoke_id not in queue("rewards").job_ids  # too recent: its own job may be on the way
    wsession.query(Redemption).filter_by(id=result.redemption.id).update(
        {"cancel_requested_at": datetime.now(UTC) - timedelta(minutes=5)})
    wsession.commit()
    sweep_pending_redemptions()
    sweep_pending_redemptions()
    assert queue("rewards").job_ids.count(revoke_id) == 1
    run_jobs()
    wsession.expire_all()
    assert wsession.get(Redemption, result.redemption.id).status == "cancelled"
    assert wsession.get(Customer, customer.id).points_balance == 800
