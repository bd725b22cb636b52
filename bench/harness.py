"""Shared by the scale benchmarks (ingest, e2e, redemption_storm, burst): a bench database and
Redis db, the app's environment, gunicorn with the production config, an HTTP/1.1 POST load
generator, worker processes, and the one-line RESULT every bench prints for bench/run_all.py.

Databases: BENCH_DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432, else the
embedded PostgreSQL), database `lojal_bench_<name>`, its schema DROPPED and migrated.
Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/12), FLUSHED. Only dbs 11-12 are ours.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from app.config import sqlalchemy_url  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
BENCH_FERNET_KEY = "sxB6iTjM2n1Ah0x1v3o3S3kP4cEJ7bH2oQ0t9mA8cXo="  # throwaway
SHOPIFY_SECRET = "bench-shopify-secret"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"
BIN = Path(sys.executable).parent


def bench_server() -> str:
    """BENCH_DATABASE_URL, else the machine's PostgreSQL if it answers, else the embedded one."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return sqlalchemy_url(url)
    engine = create_engine(sqlalchemy_url(DEFAULT_SERVER))
    try:
        with engine.connect():
            return sqlalchemy_url(DEFAULT_SERVER)
    except OperationalError:  # nothing listens there: a fresh clone's machine
        from app.embedded import embedded_database_url

        return embedded_database_url(ROOT / "instance", database="postgres")
    finally:
        engine.dispose()


def bench_database(name: str) -> str:
    """A fresh, migrated `lojal_bench_<name>` on the bench server; returns its URL."""
    target = make_url(bench_server()).set(database=f"lojal_bench_{name}")
    if "bench" not in target.database:
        sys.exit(f"refusing to reset database {target.database!r}: its name must contain 'bench'")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}) is None:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    url = target.render_as_string(hide_password=False)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    app = build_app(environment(url))
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
    return url


def bench_redis_url() -> str:
    url = os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL
    import redis

    client = redis.Redis.from_url(url)
    client.ping()  # fails loudly when there is no Redis: these benches need one
    client.flushdb()
    return url


def environment(database_url: str, redis_url: str = "", **extra: str) -> dict[str, str]:
    return {"SECRET_KEY": "bench-secret-key-0123456789abcdef", "APP_URL": "https://lojal.bench",
            "TOKEN_ENCRYPTION_KEYS": BENCH_FERNET_KEY, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "SHOPIFY_API_KEY": "bench-key", "SHOPIFY_API_SECRET": SHOPIFY_SECRET, "LOG_LEVEL": "WARNING", **extra}


def build_app(env: dict[str, str], **config):
    from app import create_app

    return create_app({**env, **config})


# --- processes -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(target: str, env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen:
    """`gunicorn -c gunicorn.conf.py TARGET` exactly as the Procfile runs it (WEB_* from the env)."""
    full_env = {**os.environ, **env, "PORT": str(port), "HOST": "127.0.0.1"}
    return subprocess.Popen([str(BIN / "gunicorn"), "-c", str(GUNICORN_CONF), target], cwd=cwd, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for_http(port: int, process: subprocess.Popen, path: str = "/healthz", seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server on port {port} exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers (e.g. 405 on a POST-only path): serving
        except OSError:
            time.sleep(0.1)
    sys.exit(f"server on port {port} did not answer within {seconds:g} s")


def start_workers(count: int, env: dict[str, str], *queues: str) -> list[subprocess.Popen]:
    """`lojal worker QUEUES` processes, as the Procfile runs them."""
    full_env = {**os.environ, **env}
    return [subprocess.Popen([str(BIN / "lojal"), "worker", *queues], cwd=ROOT, env=full_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for _ in range(count)]


def wait_for_workers(redis_url: str, count: int, seconds: float = 60) -> None:
    import redis
    from rq import Worker

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    while Worker.count(connection=client) < count:
        if time.monotonic() > deadline:
            sys.exit(f"{count} workers did not register within {seconds:g} s")
        time.sleep(0.05)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- HTTP load -------------------------------------------------------------------------------

def post_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _connection(port: int, next_request, deadline: float, latencies: list, statuses: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            request = next_request()
            if request is None:
                return
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            if not status_line:  # the server closed this keep-alive connection (a recycled worker)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses.append(int(status_line.split()[1]))
    finally:
        writer.close()


def drive(port: int, next_request, connections: int, seconds: float) -> dict:
    """`connections` keep-alive connections, each sending its next request when the answer is in,
    for `seconds` (or until next_request() returns None)."""
    latencies: list[float] = []
    statuses: list[int] = []

    async def run():
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, next_request, deadline, latencies, statuses)
                               for _ in range(connections)))

    started = time.perf_counter()
    asyncio.run(run())
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(ordered) if ordered else 0.0,
            "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else 0.0,
            "non_2xx": sum(1 for s in statuses if not 200 <= s < 300)}


def merge(runs: list[dict]) -> dict:
    """Rounds of drive() as one figure: total requests over total time; the worst p99."""
    requests, seconds = sum(r["requests"] for r in runs), sum(r["seconds"] for r in runs)
    return {"requests": requests, "seconds": seconds, "rps": requests / seconds,
            "p50_ms": statistics.median(r["p50_ms"] for r in runs), "p99_ms": max(r["p99_ms"] for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs)}


# --- reporting -------------------------------------------------------------------------------

def report(bench: str, rows: list[dict]) -> None:
    """The line bench/run_all.py reads: one row per figure (figure, value, baseline, ratio,
    target, met, note). Printed last, after the human-readable output."""
    print("RESULT " + json.dumps({"bench": bench, "rows": rows}, default=float), flush=True)


def row(figure: str, value: float | str, *, baseline: float | str | None = None, ratio: float | None = None,
        target: str = "", met: bool | None = None, note: str = "") -> dict:
    return {"figure": figure, "value": value, "baseline": baseline, "ratio": ratio, "target": target,
            "met": met, "note": note}
