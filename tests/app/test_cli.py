"""The `lojal` command line."""
from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import text

from app.loyalty.adjustments import adjust_points
from tests.conftest import test_config
from tests.factories import make_customer, make_shop


def test_lojal_console_script_lists_the_commands():
    env = {**os.environ, **{k: str(v) for k, v in test_config().items() if isinstance(v, str)}}
    out = subprocess.run([sys.executable, "-c", "from app.cli import main; main()", "--help"],
                         capture_output=True, text=True, check=True, env=env).stdout
    for command in ("db", "worker", "demo", "ledger"):
        assert command in out


def test_ledger_check_passes_when_balances_agree(app, session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 40, reason="goodwill", actor="staff:a", now=now)
    session.commit()
    result = app.test_cli_runner().invoke(args=["ledger", "check", "--shop-id", str(shop.id)])
    assert result.exit_code == 0 and "ledger ok" in result.output


def test_ledger_check_fails_and_names_the_customer_on_drift(app, session, now):
    shop = make_shop(session)
    customer = make_customer(session, shop)
    adjust_points(session, shop.id, customer.id, 40, reason="goodwill", actor="staff:a", now=now)
    session.execute(text("UPDATE customers SET points_balance = 1000 WHERE id = :id"), {"id": customer.id})
    session.commit()
    result = app.test_cli_runner().invoke(args=["ledger", "check", "--shop-id", str(shop.id)])
    assert result.exit_code == 1
    assert f"customer {customer.id}: balance 1000 != ledger 40" in result.output


def test_ledger_check_of_a_shop_that_does_not_exist_is_an_error_not_ledger_ok(app, session):
    result = app.test_cli_runner().invoke(args=["ledger", "check", "--shop-id", "987654321"])
    assert result.exit_code == 2 and "no shop 987654321" in result.output and "ledger ok" not in result.output


def test_ledger_check_with_an_id_beyond_bigint_is_a_usage_error_not_a_traceback(app, session):
    result = app.test_cli_runner().invoke(args=["ledger", "check", "--shop-id", str(2**70)])
    assert result.exit_code == 2 and "--shop-id" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _lojal(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **{k: str(v) for k, v in test_config().items() if isinstance(v, str)}, **env}
    return subprocess.run([sys.executable, "-c", "from app.cli import main; main()", *args],
                          capture_output=True, text=True, env=environ, timeout=60)


def test_a_bad_setting_stops_every_command_with_one_line_naming_it_not_a_traceback():
    for args in (("worker", "--burst"), ("db", "upgrade"), ("ledger", "check"), ("--help",)):
        result = _lojal(*args, APP_URL="not a url")
        assert "APP_URL: must be a URL" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and "No such command" not in result.stderr, (args, result.stderr)
        if args != ("--help",):
            assert result.returncode != 0, args


def test_redis_or_database_down_is_one_error_line_naming_the_setting_not_a_traceback():
    for args, env, named in ((("jobs", "failed"), {"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL"),
                             (("jobs", "retry", "--all"), {"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL"),
                             (("ledger", "check"), {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"},
                              "DATABASE_URL")):
        result = _lojal(*args, **env)
        assert result.returncode == 1, (args, result.stderr)
        assert named in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_a_bad_setting_under_flask_app_wsgi_or_gunicorns_import_is_one_line_not_a_traceback():
    environ = {**os.environ, **{k: str(v) for k, v in test_config().items() if isinstance(v, str)},
               "APP_URL": "not a url"}
    for command in ([sys.executable, "-m", "flask", "--app", "wsgi", "routes"], [sys.executable, "-c", "import wsgi"]):
        result = subprocess.run(command, capture_output=True, text=True, env=environ, timeout=60)
        assert result.returncode != 0, command
        assert "APP_URL: must be a URL" in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
