"""Redemptions: list, read, resend the code email, cancel (the code is deleted, then the points come back)."""
from __future__ import annotations

from datetime import UTC, datetime

from app.admin.api.registry import commit, operation
from app.admin.schemas.common import ReasonSchema
from app.admin.schemas.customers import RedemptionPageSchema, RedemptionQuerySchema, RedemptionSchema
from app.extensions import db
from app.loyalty.redemption_admin import get_redemption, list_redemptions, resend_code
from app.loyalty.redemption_cancel import request_cancellation
from jobs.dispatch import dispatch_before_commit, dispatch_committed


@operation("/redemptions", "GET", tag="redemptions", summary="Redemptions, newest first",
           query=RedemptionQuerySchema(), response=RedemptionPageSchema())
def list_redemptions_view(identity, query):
    return list_redemptions(db.session, identity.shop_id, customer_id=query["customer_id"], status=query["status"],
                            cursor=query["cursor"], limit=query["limit"])


@operation("/redemptions/<int:redemption_id>", "GET", tag="redemptions", summary="One redemption",
           response=RedemptionSchema())
def get_redemption_view(identity, redemption_id):
    return get_redemption(db.session, identity.shop_id, redemption_id)


@operation("/redemptions/<int:redemption_id>/resend", "POST", tag="redemptions",
           summary="Email the code to the customer again (issued codes only)", permission="adjust",
           response=RedemptionSchema(), status=202)
def resend_redemption(identity, redemption_id):
    intents = resend_code(db.session, identity.shop_id, redemption_id, identity.actor)
    dispatch_before_commit(intents)  # queue down: 503 and no audit row for a send that never happened
    commit()
    return get_redemption(db.session, identity.shop_id, redemption_id)


@operation("/redemptions/<int:redemption_id>/cancel", "POST", tag="redemptions",
           summary="Cancel an unused code: it is deleted on the platform, then the points come back (owner)",
           permission="cancel", body=ReasonSchema(), response=RedemptionSchema(), status=202)
def cancel_redemption_view(identity, redemption_id, body):
    cancel = request_cancellation(db.session, identity.shop_id, redemption_id, identity.actor, body["reason"],
                                  datetime.now(UTC))
    # Committed (`cancelling`, audited) before the job is queued: Redis down is a 202, not a 500.
    commit()
    dispatch_committed(cancel.intents, redemption_id)
    # Re-read: without Redis the job has already run, and the answer shows how it ended.
    return get_redemption(db.session, identity.shop_id, redemption_id)
