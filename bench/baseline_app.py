"""The bench's baseline: a bare Flask app answering GET /widget/v1/me with a constant JSON dict
shaped like a real /me answer. Served by the same gunicorn settings as the real app
(bench/widget.py), it measures what the server, Flask and JSON cost on their own."""
from __future__ import annotations

from flask import Flask, jsonify

ANSWER = {
    "customer": {"id": "bench", "first_name": "Bench"},
    "points_balance": 1250, "pending_points": 0, "points_balance_formatted": "1,250",
    "tier": {"id": 2, "name": "Silver"},
    "next_tier": {"name": "Gold", "remaining": 250, "remaining_formatted": "250", "progress": 0.8},
    "referral_code": "BENCH0001", "referral_url": "https://lojal.bench/r/BENCH0001",
    "expiring_soon": None, "ladder_stage": "active",
    "rewards": [{"id": 1, "name": "5 off your order", "points_cost": 500, "affordable": True, "description": ""}],
    "currency": "USD", "locale": "en",
}

app = Flask(__name__)


@app.get("/widget/v1/me")
def me():
    response = jsonify(ANSWER)
    response.headers["Cache-Control"] = "private, no-store"
    return response
