"""The ingest bench's baseline: a bare Flask app whose POST /shopify/webhooks only reads the body
and answers 200 — what gunicorn, Flask and the HTTP exchange cost without verify/store/enqueue."""
from __future__ import annotations

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/shopify/webhooks")
def webhook():
    request.get_data(cache=False)
    return jsonify(status="stored")


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
