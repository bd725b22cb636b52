"""The request body cap, also for bodies streamed without a Content-Length.

App-wide the cap is MAX_CONTENT_LENGTH (refuse_oversized_body before every request); the
widget API narrows it to WIDGET_MAX_BODY for its own routes (widgets/hardening.py).
"""
from __future__ import annotations

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge


def cap_body(cap: int) -> None:
    """Raise 413 (the JSON envelope, app.errors) when this request's body is over `cap` bytes."""
    request.max_content_length = cap
    length = request.content_length
    if length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # No length: werkzeug's stream stops quietly at max_content_length, and the view would
        # read the cut-off body (even as a whole JSON object). Read one byte more here and refuse.
        request.max_content_length = cap + 1
        length = len(request.get_data(cache=True))
    if length is not None and length > cap:
        raise RequestEntityTooLarge(f"The request body is larger than {cap} bytes.")


def refuse_oversized_body() -> None:
    cap = current_app.config.get("MAX_CONTENT_LENGTH")
    if cap is not None:
        cap_body(cap)
