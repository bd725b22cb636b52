"""Migrations on the big, hot tables must not block their writers while they run."""
import importlib.util
import io
from pathlib import Path

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def _upgrade_sql(filename: str) -> str:
    spec = importlib.util.spec_from_file_location(filename[:-3], VERSIONS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    context = MigrationContext.configure(dialect_name="postgresql", opts={"as_sql": True, "output_buffer": out})
    with Operations.context(context):
        module.upgrade()
    return out.getvalue()


def test_the_inbox_retention_index_is_built_concurrently_so_webhook_ingest_is_not_blocked():
    # webhook_events was never pruned before 0026: it is the biggest table, and every webhook
    # INSERTs into it. A plain CREATE INDEX takes a SHARE lock (no INSERT) for the whole build;
    # 0010 and 0013 build their hot-table indexes CONCURRENTLY in an autocommit block.
    sql = _upgrade_sql("0026_inbox_retention.py")
    assert "CREATE INDEX CONCURRENTLY" in sql, sql


def test_the_winback_lift_migration_rewrites_no_rows_under_its_alter_table_lock():
    # 0028's own docstring: "adding them rewrites nothing". Its UPDATE of every converted row runs
    # in the migration's transaction, after ADD COLUMN took ACCESS EXCLUSIVE on winback_enrollments
    # (no reads, no order-path writes until it commits), and what it writes is never read: the
    # lift only counts rows with holdout_percent > 0, and every pre-0028 row has it NULL.
    sql = _upgrade_sql("0028_winback_lift_basis.py")
    assert "ALTER TABLE winback_enrollments ADD COLUMN" in sql
    assert "UPDATE" not in sql.upper(), sql
