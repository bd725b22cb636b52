"""The widget's weight budget: competitors ship 105-285 KB; ours stays under 10 KB gzipped."""
from __future__ import annotations

import gzip

from widgets.assets import SCRIPT, STATIC_DIR

BUDGET_GZIPPED = 10_240


def test_the_shipped_widget_script_is_at_most_10_kb_gzipped():
    body = (STATIC_DIR / SCRIPT).read_bytes()
    # Level 6 is what most servers and CDNs use on the fly; level 9 (what we serve) is smaller.
    size = len(gzip.compress(body, compresslevel=6))
    assert size <= BUDGET_GZIPPED, f"{SCRIPT} is {size} bytes gzipped; the budget is {BUDGET_GZIPPED}"


def test_the_gzipped_response_the_app_sends_is_within_the_budget(client):
    response = client.get(f"/widget/static/{SCRIPT}", headers={"Accept-Encoding": "gzip"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert len(response.get_data()) <= BUDGET_GZIPPED


def test_the_widget_script_loads_nothing_else():
    # One request, no dependencies: no imports, no other script or stylesheet fetched.
    source = (STATIC_DIR / SCRIPT).read_text()
    for marker in ("import ", "import(", "require(", "document.createElement('script')", "<link", "@import"):
        assert marker not in source, marker
