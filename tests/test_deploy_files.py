"""The deploy files agree with the app: the Procfile's and compose's commands exist, gunicorn's
config loads with the documented defaults and really serves the app, compose has the five
services with health checks, one scheduler and a scalable worker."""
from __future__ import annotations

import multiprocessing
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from gunicorn.config import Config

from app import PROJECT_ROOT
from tests.conftest import TEST_FERNET_KEY, _DATABASE_URL
from tests.faults.conftest import free_port

APP_SERVICES = ("web", "worker", "scheduler")


def procfile() -> dict[str, str]:
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def gunicorn_settings(**env: str) -> Config:
    """gunicorn.conf.py as gunicorn itself loads it, under `env`."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        namespace = {"__file__": str(PROJECT_ROOT / "gunicorn.conf.py")}
        exec(compile((PROJECT_ROOT / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"), namespace)
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    config = Config()
    for name, value in namespace.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_procfile_runs_web_worker_scheduler_and_migrations_with_commands_that_exist(app):
    processes = procfile()
    assert set(processes) == {"release", "web", "worker", "scheduler"}
    assert processes["web"] == "gunicorn -c gunicorn.conf.py wsgi:app"
    assert "TZ=UTC" in processes["scheduler"]  # cron expressions are read in the scheduler's local time
    for name in ("worker", "scheduler"):
        assert processes[name].split()[-1] in app.cli.commands
    assert "db" in app.cli.commands and processes["release"] == "lojal db upgrade"


def test_gunicorn_defaults_suit_io_bound_requests_and_follow_the_environment():
    default = gunicorn_settings()
    assert default.worker_class_str == "gthread" and default.threads == 4 and default.preload_app
    assert default.workers == 2 * multiprocessing.cpu_count() + 1
    assert 5 < default.timeout <= 60 and default.keepalive > 60
    tuned = gunicorn_settings(WEB_CONCURRENCY="3", WEB_THREADS="8", PORT="9123")
    assert (tuned.workers, tuned.threads, tuned.address) == (3, 8, [("0.0.0.0", 9123)])


def start_gunicorn(port: int, **env: str) -> subprocess.Popen:
    """`gunicorn -c gunicorn.conf.py wsgi:app` on `port` (no Redis), once it answers /healthz."""
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "WEB_THREADS": "2", "DATABASE_URL": _DATABASE_URL,
           "SECRET_KEY": "test-secret-key-0123456789abcdef", "APP_URL": "https://lojal.test",
           "TOKEN_ENCRYPTION_KEYS": TEST_FERNET_KEY, "LOG_LEVEL": "WARNING", **env}
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                              cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(300):  # up to 15 s for the master to build the app and fork
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                assert response.status == 200 and b'"ok"' in response.read()
                return server
        except OSError:
            if server.poll() is not None:
                pytest.fail(server.stderr.read().decode()[-2000:])
            time.sleep(0.05)
    server.terminate()
    server.wait()
    pytest.fail("gunicorn did not answer /healthz")


def test_gunicorn_with_this_config_serves_the_app():
    server = start_gunicorn(free_port(), WEB_CONCURRENCY="2")
    server.terminate()
    server.wait()


def test_gunicorns_access_log_redacts_secrets_in_query_strings_paths_and_headers(tmp_path):
    secret = {name: f"{name}-{secrets.token_hex(6)}" for name in
              ("code", "hmac", "id_token", "session", "signature", "token", "nested", "referer", "cookie",
                                         "unsubscribe")}
    targets = [
        f"/shopify/callback?code={secret['code']}&hmac={secret['hmac']}&shop=kept.myshopify.com&timestamp=1",
        f"/shopify/app?embedded=1&id_token={secret['id_token']}&session={secret['session']}&shop=kept.myshopify.com",
        f"/widget/v1/me?shop=kept.myshopify.com&signature={secret['signature']}&TOKEN={secret['token']}",
        "/shopify/patch-id-token?shop=kept.myshopify.com&shopify-reload="
        + quote(f"/shopify/app?shop=kept.myshopify.com&id_token={secret['nested']}", safe=""),
        f"/email/unsubscribe/{secret['unsubscribe']}?shop=kept.myshopify.com",  # the token is the path
    ]
    access_log = tmp_path / "access.log"
    port = free_port()
    server = start_gunicorn(
        port, WEB_CONCURRENCY="1", WEB_ACCESS_LOG=str(access_log),
        # Every atom a custom format could name, so none of them may carry a secret either.
        GUNICORN_CMD_ARGS="--access-logformat '%(r)s %(q)s %(f)s %({referer}i)s %({cookie}i)s "
                          "%({query_string}e)s %({raw_uri}e)s %({http_cookie}e)s %(U)s'")
    try:
        for target in targets:
            request = urllib.request.Request(f"http://127.0.0.1:{port}{target}", headers={
                "Referer": f"https://lojal.test/shopify/app?shop=kept.myshopify.com&id_token={secret['referer']}",
                "Cookie": f"lojal_shopify_state={secret['cookie']}"})
            try:
                urllib.request.urlopen(request, timeout=5).close()
            except urllib.error.HTTPError:
                pass  # refused (no Shopify credentials here): logged all the same
    finally:
        server.terminate()
        server.wait()
    logged = access_log.read_text()
    assert logged.count("kept.myshopify.com") >= 2 * len(targets)  # the lines are there, other values kept
    assert [name for name, value in secret.items() if value in logged] == []


def test_compose_has_the_five_services_with_health_checks():
    services = compose()["services"]
    assert {"web", "worker", "scheduler", "postgres", "redis"} <= set(services)
    for name in (*APP_SERVICES, "postgres", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name in APP_SERVICES:
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy" and needs["redis"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["lojal", "db", "upgrade"]


def test_compose_commands_match_the_procfile_one_scheduler_and_a_scalable_worker():
    services, processes = compose()["services"], procfile()
    for name in APP_SERVICES:
        assert " ".join(services[name]["command"]) in processes[name]
    assert services["scheduler"]["deploy"]["replicas"] == 1 and services["scheduler"]["environment"]["TZ"] == "UTC"
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]  # --scale worker=N
    assert "--appendonly" in services["redis"]["command"]  # RQ's queues survive a Redis restart


def test_dockerfile_runs_gunicorn_with_this_config_as_a_non_root_user():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in dockerfile
    assert "\nUSER lojal\n" in dockerfile and "HEALTHCHECK" in dockerfile
