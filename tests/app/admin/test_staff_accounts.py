"""Staff account changes under concurrency: two owners demoting each other at once; a support agent's
adjustments racing for the last of the daily limit; the same email added twice at once."""
from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session

from app.admin.staff_accounts import update_staff
from app.extensions import db
from app.loyalty.errors import LoyaltyError
from app.models import AuditLog, StaffUser
from tests.factories import make_shop, make_staff
from tests.racing import second_waits_for_first


def test_two_owners_demoting_each_other_at_once_leave_one_owner(app, session):
    shop = make_shop(session)
    first, second = make_staff(session, shop, "owner"), make_staff(session, shop, "owner")
    session.commit()
    shop_id, first_id, second_id = shop.id, first.id, second.id
    outcome: list = []
    engine = db.engine  # the thread has no app context

    def demote_second():
        with Session(engine) as other:
            try:
                update_staff(other, shop_id, second_id, {"role": "support"}, actor="test", now=datetime.now(UTC))
                other.commit()
                outcome.append("demoted")
            except LoyaltyError as exc:
                outcome.append(exc.code)

    # It must wait for this change, not count the owners before it.
    second_waits_for_first(
        engine,
        lambda mine: update_staff(mine, shop_id, first_id, {"role": "support"}, actor="test", now=datetime.now(UTC)),
        demote_second)
    assert outcome == ["last_owner"]
    session.rollback()
    owners = session.scalar(select(func.count()).select_from(StaffUser).where(
        StaffUser.shop_id == shop_id, StaffUser.role == "owner", StaffUser.disabled_at.is_(None)))
    assert owners == 1


def test_a_staff_change_is_audited_with_the_values_before_it(session):
    shop = make_shop(session)
    owner, agent = make_staff(session, shop, "owner"), make_staff(session, shop, "support", name="Ann")
    update_staff(session, shop.id, agent.id, {"role": "owner", "name": "Ann B", "password": "a-new-password"},
                 actor="staff:1:boss", now=datetime.now(UTC))
    update_staff(session, shop.id, agent.id, {"disabled": True}, actor="staff:1:boss", now=datetime.now(UTC))
    rows = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id, AuditLog.action == "staff.update")
                           .order_by(AuditLog.id)).all()
    assert [r.details for r in rows] == [
        {"role": "owner", "name": "Ann B", "password": "(changed)", "before": {"role": "support", "name": "Ann"}},
        {"disabled": True, "before": {"disabled": False}},
    ]


def test_concurrent_support_adjustments_never_exceed_the_daily_limit(app, session):
    """Eight adjustments of 300 at once, from the agent's session and two of their tokens: the
    daily 1,000 lets exactly three through, however they interleave."""
    from concurrent.futures import ThreadPoolExecutor

    from app.admin.auth import staff_identity
    from app.admin.staff_accounts import adjust_as, create_token
    from tests.factories import make_customer

    shop = make_shop(session, support_adjust_limit_per_day=1000)
    agent = make_staff(session, shop, "support")
    tokens = [create_token(session, shop.id, agent.id, f"script-{n}", actor="test")[0] for n in range(2)]
    customers = [make_customer(session, shop).id for _ in range(4)]
    session.commit()
    identities = [staff_identity(agent), *(staff_identity(agent, via="token", token=t) for t in tokens)]
    barrier = threading.Barrier(8)
    engine = db.engine

    def adjust(n: int) -> str:
        with Session(engine) as other:
            barrier.wait(timeout=10)
            try:
                adjust_as(other, identities[n % 3], customers[n % 4], 300, reason="goodwill", note=None,
                          now=datetime.now(UTC), idempotency_key=None)
                other.commit()
                return "adjusted"
            except LoyaltyError as exc:
                return exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(adjust, range(8)))
    assert outcomes == ["adjusted"] * 3 + ["adjustment_limit"] * 5
    session.rollback()
    total = session.scalar(select(func.coalesce(func.sum(func.abs(AuditLog.details["points"].astext.cast(Integer))), 0))
                           .where(AuditLog.shop_id == shop.id, AuditLog.action == "points.adjust"))
    assert total == 900


def test_the_same_email_added_twice_at_once_is_staff_exists_not_a_database_error(app, session):
    """A double-clicked Add staff (or invite): the second waits for the first and is refused."""
    from app.admin.staff_accounts import create_staff, invite_staff

    shop = make_shop(session)
    session.commit()
    shop_id, engine = shop.id, db.engine
    outcome: list = []

    def invite_second():
        with Session(engine) as other:
            try:
                invite_staff(other, shop_id, "Twin@Staff.example", "viewer", actor="test", now=datetime.now(UTC))
                other.commit()
                outcome.append("invited")
            except LoyaltyError as exc:
                outcome.append(exc.code)

    # It must wait for this member, not check the emails before it.
    second_waits_for_first(
        engine,
        lambda mine: create_staff(mine, shop_id, "twin@staff.example", "support", "a-long-password", actor="test"),
        invite_second)
    assert outcome == ["staff_exists"]


def test_a_double_submit_that_takes_the_last_of_the_daily_limit_answers_the_second_as_a_replay(app, session):
    """Both posts of a double click run at once: the second waits for the first (the agent's
    lock), and must then be the first's replay, not "over your daily limit" for what was done."""
    from app.admin.auth import staff_identity
    from app.admin.staff_accounts import adjust_as
    from tests.factories import make_customer

    shop = make_shop(session, support_adjust_limit_per_day=1000)
    agent = make_staff(session, shop, "support")
    customer_id = make_customer(session, shop).id
    session.commit()
    identity = staff_identity(agent)
    outcome: list = []
    engine = db.engine

    def submit(other: Session):
        return adjust_as(other, identity, customer_id, 1000, reason="goodwill", note=None, now=datetime.now(UTC),
                         idempotency_key="form-key-1")

    def second():
        with Session(engine) as other:
            try:
                outcome.append(submit(other))
                other.commit()
            except LoyaltyError as exc:
                outcome.append(exc.code)

    second_waits_for_first(engine, submit, second)
    assert outcome == [None]
    session.rollback()
    rows = session.scalars(select(AuditLog).where(AuditLog.shop_id == shop.id, AuditLog.action == "points.adjust")).all()
    assert [r.details["points"] for r in rows] == [1000]
