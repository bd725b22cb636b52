"""Cancelling a redemption against a (stubbed, respx) Shopify Admin API: the code is deleted
exactly once, then the points come back exactly once; a used code is refused; a Shopify that
keeps failing ends in a failed cancellation with the points not given back."""
from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.loyalty.intents import RevokeDiscount
from app.loyalty.ledger import find_balance_drift
from app.loyalty.redemption_cancel import request_cancellation
from app.loyalty.redemptions import mark_issued
from app.models import AuditLog, LedgerEntry
from jobs.dispatch import dispatch
from jobs.emails import email_job_id
from jobs.queues import enqueue, queue
from tests.factories import redeem_five_off, redemption_and_balance
from tests.integrations.shopify.admin_api import make_shopify_shop, ok, user_errors
from tests.jobs.shopify_jobs import release_scheduled, scheduled_jobs

# The jobs read the real clock: redemptions made now, so their codes have not expired.
NOW = datetime.now(UTC).replace(microsecond=0)
NODE_ID = "gid://shopify/DiscountCodeNode/2001"


@pytest.fixture
def shop(wsession):
    shop = make_shopify_shop(wsession)
    wsession.commit()
    return shop


def redeemed(session, shop, *, issued=True):
    customer, result = redeem_five_off(session, shop, "739001", "checkout-1", NOW)
    if issued:
        mark_issued(session, shop.id, result.redemption.id, NODE_ID, NOW)
    session.commit()
    return customer, result


def cancel(session, shop, redemption):
    asked = request_cancellation(session, shop.id, redemption.id, "staff:1:ann", "customer changed their mind", NOW)
    session.commit()
    dispatch(asked.intents)
    return asked


def usage(uses: int | None, node_id: str = NODE_ID) -> httpx.Response:
    discount = {"__typename": "DiscountCodeBasic"}
    if uses is not None:
        discount["asyncUsageCount"] = uses
    return ok({"codeDiscountNodeByCode": {"id": node_id, "codeDiscount": discount}})


def no_such_code() -> httpx.Response:
    return ok({"codeDiscountNodeByCode": None})


def deleted(node_id: str = NODE_ID) -> httpx.Response:
    return ok({"discountCodeDelete": {"deletedCodeDiscountId": node_id, "userErrors": []}})



def reversals(session, shop) -> int:
    return session.query(LedgerEntry).filter_by(shop_id=shop.id, kind="redeem_reversal").count()


def test_cancel_deletes_the_code_once_then_gives_the_points_back_once(wsession, run_jobs, shop, api):
    customer, result = redeemed(wsession, shop)
    api.answer("LojalDiscountUsage", usage(0))
    api.answer("LojalDiscountDelete", deleted())
    cancel(wsession, shop, result.redemption)
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelling" and balance == 500  # nothing back before the code is gone
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage", "LojalDiscountDelete"]
    assert api.variables("LojalDiscountUsage") == [{"code": result.redemption.code}]
    assert api.variables("LojalDiscountDelete") == [{"id": NODE_ID}]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("cancelled", "cancelled", 1000)
    # Duplicated and replayed jobs: no Admin API call, no second refund.
    duplicate = [RevokeDiscount(shop.id, result.redemption.id)]
    dispatch(duplicate)
    dispatch(duplicate)
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage", "LojalDiscountDelete"]
    assert redemption_and_balance(wsession, customer, result.redemption)[1] == 1000
    assert reversals(wsession, shop) == 1 and find_balance_drift(wsession, shop.id) == []


def test_a_used_code_is_refused_nothing_is_deleted_and_the_points_stay_spent(wsession, run_jobs, shop, api):
    customer, result = redeemed(wsession, shop)
    api.answer("LojalDiscountUsage", usage(1))
    cancel(wsession, shop, result.redemption)
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("issued", "refused", 500)
    assert "already used" in redemption.cancel_detail
    assert reversals(wsession, shop) == 0
    assert wsession.scalars(select(AuditLog.action).where(AuditLog.shop_id == shop.id)
                            .order_by(AuditLog.id)).all()[-1] == "redemption.cancel_refused"


def test_a_usage_count_shopify_does_not_give_is_not_read_as_unused(wsession, run_jobs, shop, api):
    customer, result = redeemed(wsession, shop)
    api.answer("LojalDiscountUsage", usage(None))
    cancel(wsession, shop, result.redemption)
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("issued", "failed", 500)


def test_shopify_failing_is_retried_then_ends_failed_with_no_points_back(wsession, run_jobs, worker_app, shop, api):
    customer, result = redeemed(wsession, shop)
    attempts = worker_app.config["JOB_RETRIES"] + 1
    api.answer("LojalDiscountUsage", *[usage(0) for _ in range(attempts)])
    api.answer("LojalDiscountDelete", *[httpx.Response(503, text="unavailable") for _ in range(attempts)])
    cancel(wsession, shop, result.redemption)
    run_jobs()
    [retry] = scheduled_jobs(worker_app, "rewards")  # RQ's Retry, after its back-off
    assert retry.func_name == "jobs.cancellations.revoke_discount"
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert redemption.status == "cancelling" and balance == 500
    for _ in range(attempts - 1):
        release_scheduled(worker_app, "rewards")
        run_jobs()
    assert scheduled_jobs(worker_app, "rewards") == []
    assert api.operations().count("LojalDiscountDelete") == attempts
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("issued", "failed", 500)
    assert "503" in redemption.cancel_detail and "may still work" in redemption.cancel_detail
    assert reversals(wsession, shop) == 0


def test_a_delete_whose_answer_was_lost_is_not_sent_again(wsession, run_jobs, worker_app, shop, api):
    customer, result = redeemed(wsession, shop)
    # Shopify deleted it but the answer never arrived; the retry finds no such code.
    api.answer("LojalDiscountUsage", usage(0), no_such_code())
    api.answer("LojalDiscountDelete", httpx.ReadTimeout("lost"))
    cancel(wsession, shop, result.redemption)
    run_jobs()
    release_scheduled(worker_app, "rewards")
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage", "LojalDiscountDelete", "LojalDiscountUsage"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, balance) == ("cancelled", 1000) and reversals(wsession, shop) == 1


def test_a_delete_refused_because_the_code_is_already_gone_counts_as_done(wsession, run_jobs, shop, api):
    customer, result = redeemed(wsession, shop)
    api.answer("LojalDiscountUsage", usage(0))
    api.answer("LojalDiscountDelete", user_errors("discountCodeDelete", (["id"], "INVALID", "Discount does not exist")))
    api.answer("LojalDiscountByCode", no_such_code())
    cancel(wsession, shop, result.redemption)
    run_jobs()
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, balance) == ("cancelled", 1000)


def test_a_pending_redemption_is_cancelled_without_a_code_ever_being_created(wsession, run_jobs, shop, api):
    customer, result = redeemed(wsession, shop, issued=False)
    dispatch(result.intents)  # the issue job, still queued when staff cancel
    api.answer("LojalDiscountUsage", no_such_code())
    cancel(wsession, shop, result.redemption)
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage"]  # no create, no delete
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.platform_discount_id, balance) == ("cancelled", None, 1000)


def test_the_revoke_waits_for_an_issue_attempt_that_is_still_running(wsession, run_jobs, worker_app, shop, api):
    customer, result = redeemed(wsession, shop, issued=False)
    # An issue attempt a worker has started (it may be creating the code right now).
    issue = enqueue("jobs.rewards.issue_discount", shop.id, result.redemption.id, queue_name="rewards",
                    job_id=f"issue-discount-{shop.id}-{result.redemption.id}")
    queue("rewards", worker_app).remove(issue)
    issue.set_status(JobStatus.STARTED)
    cancel(wsession, shop, result.redemption)
    run_jobs()
    assert api.operations() == []  # it did not look, so it cannot have missed the code
    assert redemption_and_balance(wsession, customer, result.redemption)[0].status == "cancelling"
    # The attempt ends having created the code; the retried revoke finds and deletes it.
    issue.set_status(JobStatus.FINISHED)
    assert mark_issued(wsession, shop.id, result.redemption.id, NODE_ID, NOW) == []
    wsession.commit()
    api.answer("LojalDiscountUsage", usage(0))
    api.answer("LojalDiscountDelete", deleted())
    release_scheduled(worker_app, "rewards")
    run_jobs()
    assert api.operations() == ["LojalDiscountUsage", "LojalDiscountDelete"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, balance) == ("cancelled", 1000)
    issue.delete()


def test_staff_cancelling_while_the_issue_job_creates_the_code_still_cancels_it(wsession, run_jobs, shop, api):
    # The job read the redemption (pending) before calling Shopify; the cancellation commits
    # while Shopify is creating the code. Marking it issued must see `cancelling`, not the
    # status the job read first: else the cancellation is dropped with the code live.
    from sqlalchemy.orm import Session

    from app.extensions import db

    customer, result = redeemed(wsession, shop, issued=False)

    def created_while_staff_cancel():
        with Session(db.engine) as staff:
            asked = request_cancellation(staff, shop.id, result.redemption.id, "staff:1:ann", "wrong reward", NOW)
            staff.commit()
        dispatch(asked.intents)
        return ok({"discountCodeBasicCreate": {"codeDiscountNode": {"id": NODE_ID}, "userErrors": []}})

    api.answer("LojalDiscountByCode", no_such_code())
    api.answer("LojalDiscountCreate", created_while_staff_cancel)
    api.answer("LojalDiscountUsage", usage(0))
    api.answer("LojalDiscountDelete", deleted())
    dispatch(result.intents)
    run_jobs()
    assert api.operations() == ["LojalDiscountByCode", "LojalDiscountCreate", "LojalDiscountUsage",
                                "LojalDiscountDelete"]
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("cancelled", "cancelled", 1000)
    assert redemption.platform_discount_id == NODE_ID
    # No "here is your code" email for a code that is gone.
    assert not Job.exists(email_job_id(shop.id, f"redemption:{result.redemption.id}"), queue("emails").connection)


def test_a_cancellation_ended_by_shopify_refusing_the_code_is_audited_with_the_points_back_once(
        wsession, run_jobs, shop, api):
    # Staff cancel while the issue job's create is under way, and Shopify refuses the code: no
    # code exists, so the failed issue ends the cancellation too. That end is audited, as every
    # other end of a staff cancellation is.
    from sqlalchemy.orm import Session

    from app.extensions import db

    customer, result = redeemed(wsession, shop, issued=False)

    def refused_while_staff_cancel():
        with Session(db.engine) as staff:
            asked = request_cancellation(staff, shop.id, result.redemption.id, "staff:1:ann", "wrong reward", NOW)
            staff.commit()
        dispatch(asked.intents)
        return user_errors("discountCodeBasicCreate", (["basicCodeDiscount", "endsAt"], "INVALID", "Ends at is bad"))

    api.answer("LojalDiscountByCode", no_such_code())
    api.answer("LojalDiscountCreate", refused_while_staff_cancel)
    dispatch(result.intents)
    run_jobs()
    assert api.operations() == ["LojalDiscountByCode", "LojalDiscountCreate"]  # the revoke had nothing to do
    redemption, balance = redemption_and_balance(wsession, customer, result.redemption)
    assert (redemption.status, redemption.cancel_state, balance) == ("failed", "cancelled", 1000)
    assert reversals(wsession, shop) == 1
    audit = wsession.scalars(select(AuditLog).where(
        AuditLog.shop_id == shop.id, AuditLog.target_type == "redemption",
        AuditLog.target_id == str(result.redemption.id)).order_by(AuditLog.id)).all()
    assert [(a.action, a.actor) for a in audit] == [("redemption.cancel_requested", "staff:1:ann"),
                                                    ("redemption.cancel", "staff:1:ann")]
    assert audit[-1].details["points"] == 500 and "Ends at is bad" in audit[-1].details["issue_failed"]
