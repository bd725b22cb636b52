"""POST /widget/v1/me/redemptions and GET /widget/v1/me/redemptions/<id>.

The domain debits the points and writes the redemption in one transaction (keyed by the
client's Idempotency-Key); we commit once, then dispatch the IssueDiscount job. In-process
(no Redis) the job runs right there, so the code exists when we answer 201; with workers
the answer is 202 and the client polls the GET until the status changes.
"""
from __future__ import annotations

from flask import jsonify, request

from app.admin.schemas.common import MAX_ID
from app.extensions import db
from app.loyalty.redemptions import redeem_reward, redemption_for_customer
from app.models import Customer, Redemption
from jobs.dispatch import dispatch_committed
from widgets.api import bp, utcnow
from widgets.auth import require_customer
from widgets.errors import WidgetError
from widgets.me import PRIVATE
from widgets.schemas import redeem_body

MAX_IDEMPOTENCY_KEY = 200  # redemptions.idempotency_key is a VARCHAR(200)


@bp.post("/me/redemptions")
def redeem():
    shopper, customer = require_customer()
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:  # the domain refuses longer ones too, as a 422
        raise WidgetError(400, "idempotency_key_required",
                          f"send an Idempotency-Key header of 1 to {MAX_IDEMPOTENCY_KEY} characters "
                          "(a fresh UUID per redeem click, reused on retry)")
    body = redeem_body.load(request.get_json(silent=False) or {})
    session = db.session
    result = redeem_reward(session, shopper.shop.id, customer.id, body["reward_id"], key, utcnow(),
                           points_cost=body["points_cost"])
    redemption_id = result.redemption.id
    session.commit()
    dispatch_committed(result.intents, redemption_id)  # Redis down: the client sees `pending` and polls
    session.expire_all()  # an in-process job committed the code in its own session
    redemption = session.get(Redemption, redemption_id)
    return jsonify(redemption_body(redemption, customer)), 201 if redemption.status == "issued" else 202, PRIVATE


@bp.get("/me/redemptions/<int:redemption_id>")
def redemption(redemption_id: int):
    shopper, customer = require_customer()
    # An id beyond a bigint names no row (the database would refuse the comparison: a 500).
    found = (redemption_for_customer(db.session, shopper.shop.id, customer.id, redemption_id)
             if redemption_id <= MAX_ID else None)
    if found is None:
        raise WidgetError(404, "redemption_not_found", "no such redemption")
    return jsonify(redemption_body(found, customer)), 200, PRIVATE


def redemption_body(redemption: Redemption, customer: Customer) -> dict:
    issued = redemption.status == "issued"
    return {
        "id": redemption.id,
        "status": redemption.status,
        "code": redemption.code if issued else None,
        "reward": {"id": redemption.reward_id, "name": redemption.discount.get("title")},
        "points_cost": redemption.points_cost,
        "points_balance": customer.points_balance,
        "expires_at": redemption.expires_at.isoformat() if redemption.expires_at else None,
    }
