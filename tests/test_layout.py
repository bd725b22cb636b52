"""The required top-level layout (shared/DESIGN.md) is present and importable without side effects."""
from __future__ import annotations

import importlib
import subprocess
import sys

from app import PROJECT_ROOT


def test_required_top_level_layout_exists():
    for path in ("app/loyalty", "integrations", "widgets", "jobs", "migrations/versions", "tests", "wsgi.py",
                 "pyproject.toml", "README.md", "Makefile", ".ci/run"):
        assert (PROJECT_ROOT / path).exists(), path


def test_importing_the_packages_connects_to_nothing_and_builds_no_app():
    # A fresh interpreter with no database or settings: imports alone must succeed.
    code = ("import app, app.models, app.loyalty.apply, integrations.registry, jobs.queues, jobs.inbox, widgets; "
            "from flask import current_app; print('ok')")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_loyalty_domain_imports_no_web_platform_or_job_code():
    import ast

    for path in (PROJECT_ROOT / "app" / "loyalty").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("flask", "integrations", "jobs", "widgets", "app.web")), (path.name, name)
    assert importlib.import_module("app.loyalty.apply").HANDLERS
