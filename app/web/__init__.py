"""The web layer's blueprints, registered by create_app()."""
from __future__ import annotations

from flask import Flask


def register_web(app: Flask) -> None:
    blueprints: list = []
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
