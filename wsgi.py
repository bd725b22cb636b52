"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # The message names each bad setting; a traceback would only bury it (gunicorn, flask --app).
    raise SystemExit(f"lojal: {exc}") from None
