"""The loyalty ladder: prospect, first-time, returning (2+), loyal (5+), ambassador (2+ orders and
a friend who bought); the SQL form states the same rule."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from app.loyalty.ladder import (
    AMBASSADOR_ORDERS, AMBASSADOR_REFERRALS, LADDER_STAGES, LOYAL_ORDERS, ladder_stage, ladder_stage_sql,
)

CASES = [
    (0, 0, "prospect"),
    (0, 3, "prospect"),      # brought friends but never bought
    (1, 0, "first_time"),
    (1, 1, "first_time"),    # one order is not enough to be an ambassador
    (2, 0, "returning"),
    (4, 0, "returning"),
    (5, 0, "loyal"),
    (40, 0, "loyal"),
    (2, 1, "ambassador"),
    (5, 1, "ambassador"),    # ambassador outranks loyal
    (12, 4, "ambassador"),
]


def test_thresholds_are_the_documented_ones():
    assert (LOYAL_ORDERS, AMBASSADOR_ORDERS, AMBASSADOR_REFERRALS) == (5, 2, 1)
    assert LADDER_STAGES == ("prospect", "first_time", "returning", "loyal", "ambassador")


@pytest.mark.parametrize(("orders", "referrals", "stage"), CASES)
def test_ladder_stage(orders, referrals, stage):
    assert ladder_stage(orders, referrals) == stage


def test_the_sql_form_agrees_with_ladder_stage(session):
    values = ", ".join(f"({o}, {r})" for o, r, _ in CASES)
    sql = text(f"SELECT o, r, {ladder_stage_sql('o', 'r')} FROM (VALUES {values}) AS t(o, r) ORDER BY o, r")
    rows = session.execute(sql).all()
    assert {(o, r): stage for o, r, stage in rows} == {(o, r): ladder_stage(o, r) for o, r, _ in CASES}
