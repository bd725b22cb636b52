"""The schema comes from the migrations, matches the models, and guards the ledger."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.models import AuditLog, LedgerEntry, Shop
from tests.factories import make_customer, make_shop


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
    assert diff == []


def _entry(session, shop, customer):
    entry = LedgerEntry(shop_id=shop.id, customer_id=customer.id, kind="adjust", points=5, idempotency_key="k1")
    session.add(entry)
    session.flush()
    return entry


@pytest.mark.parametrize("statement", [
    "UPDATE ledger_entries SET points = 500 WHERE id = :id",
    "DELETE FROM ledger_entries WHERE id = :id",
    "TRUNCATE ledger_entries CASCADE",
])
def test_ledger_refuses_update_delete_truncate_in_the_database(session, statement):
    shop = make_shop(session, default_program=False)
    entry = _entry(session, shop, make_customer(session, shop))
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text(statement), {"id": entry.id})


def test_audit_log_refuses_update(session):
    shop = make_shop(session, default_program=False)
    row = AuditLog(shop_id=shop.id, actor="staff:a", action="points.adjust")
    session.add(row)
    session.flush()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE id = :id"), {"id": row.id})


def test_whole_shop_purge_is_the_one_permitted_delete(session):
    shop = make_shop(session)
    other = make_shop(session)
    _entry(session, shop, make_customer(session, shop))
    kept = _entry(session, other, make_customer(session, other))
    session.execute(text("SELECT set_config('lojal.purge_shop_id', :id, true)"), {"id": str(shop.id)})
    session.execute(text("DELETE FROM shops WHERE id = :id"), {"id": shop.id})
    assert session.query(LedgerEntry).filter_by(shop_id=shop.id).count() == 0
    # The purge flag names one shop: another shop's entries stay protected.
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM ledger_entries WHERE id = :id"), {"id": kept.id})


def test_idempotency_keys_are_unique_per_shop_not_globally(session):
    first, second = make_shop(session, default_program=False), make_shop(session, default_program=False)
    _entry(session, first, make_customer(session, first))
    _entry(session, second, make_customer(session, second))  # same key "k1", other shop: fine
    assert session.query(Shop).filter(Shop.id.in_([first.id, second.id])).count() == 2
