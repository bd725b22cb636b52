"""The audit log's actor: one longer than its column is stored cut, and found by its full string."""
from __future__ import annotations

from app.loyalty import audit
from app.loyalty.audit_search import search_audit_log
from tests.factories import make_shop

LONG = "staff:7:" + "a" * 300 + "@x.example"


def test_a_long_actor_is_stored_cut_to_its_column_and_marked(session):
    shop = make_shop(session)
    row = audit.record(session, shop.id, LONG, "points.adjust")
    session.flush()
    assert len(row.actor) == audit.ACTOR_MAX_LENGTH and row.actor == LONG[:197] + "..."


def test_searching_by_the_full_long_actor_finds_its_rows(session):
    shop = make_shop(session)
    written = audit.record(session, shop.id, LONG, "points.adjust")
    audit.record(session, shop.id, "staff:8:other@x.example", "points.adjust")
    session.flush()
    assert [r.id for r in search_audit_log(session, shop.id, actor=LONG).items] == [written.id]
    # The cut form, as the log shows it, still finds them too.
    assert [r.id for r in search_audit_log(session, shop.id, actor=written.actor).items] == [written.id]
