"""A real PostgreSQL for machines with nothing installed (pgserver, data under instance/)."""
from __future__ import annotations

from pathlib import Path


def embedded_database_url(instance_path: str | Path, database: str = "lojal") -> str:
    """Start (or reuse) the embedded server and make sure `database` exists; return its URL."""
    import pgserver

    data_dir = Path(instance_path) / "pgdata"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process, so web, worker and CLI share it.
    server = pgserver.get_server(data_dir, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    uri = server.get_uri(database)
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)
