"""Configuration is validated at start; every problem names its setting."""
from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError, load_config
from tests.conftest import TEST_FERNET_KEY, test_config

GOOD = {"SECRET_KEY": "x" * 32, "APP_URL": "https://lojal.example", "TOKEN_ENCRYPTION_KEYS": TEST_FERNET_KEY}


def test_valid_environment_loads_with_defaults():
    config = load_config(GOOD)
    assert config["TOKEN_ENCRYPTION_KEYS"] == [TEST_FERNET_KEY]
    assert config["SHOPIFY_API_VERSION"] == "2026-07"
    assert config["DATABASE_URL"] is None and config["REDIS_URL"] is None


@pytest.mark.parametrize("missing", ["SECRET_KEY", "APP_URL", "TOKEN_ENCRYPTION_KEYS"])
def test_missing_required_setting_is_named(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_config(env)


@pytest.mark.parametrize("name,value", [
    ("TOKEN_ENCRYPTION_KEYS", "not-a-fernet-key"),
    ("TOKEN_ENCRYPTION_KEYS", f"{TEST_FERNET_KEY},broken"),
    ("APP_URL", "ftp://lojal.example"),
    ("DATABASE_URL", "mysql://root@localhost/lojal"),
    ("REDIS_URL", "http://localhost:6379"),
    ("SHOPIFY_API_VERSION", "2026-05"),
    ("SECRET_KEY", "short"),
    ("JOB_RETRIES", "many"),
])
def test_malformed_setting_is_named(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({**GOOD, name: value})


def test_shopify_key_without_secret_is_refused():
    with pytest.raises(ConfigError, match="SHOPIFY_API_SECRET"):
        load_config({**GOOD, "SHOPIFY_API_KEY": "abc"})


def test_an_old_shopify_secret_without_the_current_credentials_is_refused():
    # Mid-rotation the old secret is accepted beside the current one, never instead of it.
    with pytest.raises(ConfigError, match="SHOPIFY_OLD_API_SECRET"):
        load_config({**GOOD, "SHOPIFY_OLD_API_SECRET": "previous"})
    rotating = load_config({**GOOD, "SHOPIFY_API_KEY": "abc", "SHOPIFY_API_SECRET": "new",
                            "SHOPIFY_OLD_API_SECRET": "previous"})
    assert (rotating["SHOPIFY_API_SECRET"], rotating["SHOPIFY_OLD_API_SECRET"]) == ("new", "previous")


def test_postgres_urls_select_the_psycopg_driver():
    config = load_config({**GOOD, "DATABASE_URL": "postgres://u@db:5432/lojal"})
    assert config["DATABASE_URL"] == "postgresql+psycopg://u@db:5432/lojal"


def test_key_rotation_list_keeps_order_newest_first():
    from cryptography.fernet import Fernet

    newer = Fernet.generate_key().decode()
    config = load_config({**GOOD, "TOKEN_ENCRYPTION_KEYS": f"{newer}, {TEST_FERNET_KEY}"})
    assert config["TOKEN_ENCRYPTION_KEYS"] == [newer, TEST_FERNET_KEY]


def test_create_app_fails_at_start_on_bad_config():
    with pytest.raises(ConfigError, match="APP_URL"):
        create_app(test_config(APP_URL="not a url"))


def test_token_cipher_round_trips_and_rotates(app):
    from cryptography.fernet import Fernet

    from app.crypto import token_cipher

    with app.app_context():
        secret = token_cipher.encrypt("shpat_secret")
        assert "shpat_secret" not in secret
        assert token_cipher.decrypt(secret) == "shpat_secret"
    newer = Fernet.generate_key().decode()
    rotated_app = create_app(test_config(TOKEN_ENCRYPTION_KEYS=f"{newer},{TEST_FERNET_KEY}"))
    with rotated_app.app_context():
        rotated = token_cipher.rotate(secret)
        assert token_cipher.decrypt(rotated) == "shpat_secret"
    only_new = create_app(test_config(TOKEN_ENCRYPTION_KEYS=newer))
    with only_new.app_context():
        assert token_cipher.decrypt(rotated) == "shpat_secret"


@pytest.mark.parametrize("name,value", [
    ("REDIS_URL", "unix:///var/run/redis/redis.sock?db=2"),
    ("DATABASE_URL", "postgresql:///lojal"),
    ("DATABASE_URL", "postgresql://lojal@/lojal?host=/var/run/postgresql"),
])
def test_socket_urls_without_a_host_are_accepted(name, value):
    assert load_config({**GOOD, name: value})[name].endswith(value.split("://", 1)[1])


@pytest.mark.parametrize("name,value", [
    ("APP_URL", "https://lojal.example:https"),
    ("DATABASE_URL", "postgresql://lojal:hunter2@db:5432x/lojal"),
    ("REDIS_URL", "redis://redis:six/0"),
    ("REDIS_URL", "redis://redis:6379/1x"),
    ("SMTP_URL", "smtp://mail:twentyfive"),
    ("SMTP_URL", "smtps://user:hunter2@/"),
])
def test_url_with_a_bad_port_host_or_redis_database_is_named_without_its_password(name, value):
    with pytest.raises(ConfigError, match=name) as refused:
        load_config({**GOOD, name: value})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("value", ["Lojal", "not an address", "Lojal <>", "Lojal <no-reply@>"])
def test_mail_from_without_an_email_address_is_named_at_start(value):
    # Otherwise every email is sent as MAIL FROM:<Lojal>, refused by the server, and fails for good.
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        load_config({**GOOD, "MAIL_FROM": value})


@pytest.mark.parametrize("value", ["no-reply@shop.example", "Lojal <no-reply@localhost>", '"Shop, Inc." <hi@shop.example>'])
def test_mail_from_with_an_address_loads(value):
    assert load_config({**GOOD, "MAIL_FROM": value})["MAIL_FROM"] == value


def test_log_level_is_read_in_any_case_as_gunicorn_reads_it():
    # gunicorn.conf.py lowercases the same LOG_LEVEL; `info` must not stop the app at start.
    assert load_config({**GOOD, "LOG_LEVEL": "info"})["LOG_LEVEL"] == "INFO"
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        load_config({**GOOD, "LOG_LEVEL": "verbose"})
