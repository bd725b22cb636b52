"""After a transaction commits, its intents become jobs."""
from __future__ import annotations

import logging

from app.loyalty.intents import IssueDiscount, NotifyCustomer
from jobs.queues import enqueue, platform_api_limit

log = logging.getLogger(__name__)


def dispatch(intents: list) -> None:
    for intent in intents:
        if isinstance(intent, IssueDiscount):
            # Rate-limited per shop on every platform: the intent carries only ids, so no
            # database read is needed to decide, and every platform's API is per-shop limited.
            enqueue("jobs.rewards.issue_discount", intent.shop_id, intent.redemption_id, queue_name="rewards",
                    job_id=f"issue-discount-{intent.shop_id}-{intent.redemption_id}",
                    rate_limit=platform_api_limit(intent.shop_id))
        elif isinstance(intent, NotifyCustomer):
            # Lifecycle emails are sent by the email pipeline (not built yet); until then the
            # intent is logged so nothing is silently dropped.
            log.info("notification pending email pipeline", extra={"shop_id": intent.shop_id})
        else:
            raise TypeError(f"no dispatcher for intent {type(intent).__name__}")
