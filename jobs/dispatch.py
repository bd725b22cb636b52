"""After a transaction commits, its intents become jobs."""
from __future__ import annotations

import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.loyalty.errors import Unavailable
from app.loyalty.intents import IssueDiscount, NotifyCustomer, RevokeDiscount
from jobs.cancellations import revoke_job_id
from jobs.emails import email_job_id
from jobs.queues import enqueue, platform_api_limit


log = logging.getLogger(__name__)


def dispatch_committed(intents: list, redemption_id: int) -> bool:
    """dispatch() for a redemption's intents whose rows are already committed. Redis down is not
    an error here: the redemption sweeper re-dispatches a job that was lost, so the caller answers
    with the committed state (False: not enqueued now)."""
    try:
        dispatch(intents)
    except (RedisConnectionError, RedisTimeoutError):
        log.warning("Redis unavailable; redemption job left for the sweeper", extra={"redemption_id": redemption_id})
        return False
    return True


def dispatch_before_commit(intents: list) -> None:
    """dispatch() for intents whose only record is the caller's still uncommitted audit row (a
    resent code email: no sweeper would ever find it lost). Redis down raises Unavailable, so the
    caller's transaction is rolled back and nothing claims a send that never happened."""
    try:
        dispatch(intents)
    except (RedisConnectionError, RedisTimeoutError):
        raise Unavailable("the job queue is unavailable, so nothing was sent; try again shortly",
                          code="queue_unavailable") from None


def dispatch(intents: list) -> None:
    for intent in intents:
        if isinstance(intent, IssueDiscount):
            # Rate-limited per shop on every platform: the intent carries only ids, so no
            # database read is needed to decide, and every platform's API is per-shop limited.
            enqueue("jobs.rewards.issue_discount", intent.shop_id, intent.redemption_id, queue_name="rewards",
                    job_id=f"issue-discount-{intent.shop_id}-{intent.redemption_id}",
                    rate_limit=platform_api_limit(intent.shop_id))
        elif isinstance(intent, RevokeDiscount):
            # A second cancel click yields no intent (request_cancellation); the fixed id is what the
            # redemption sweeper looks for in Redis. RQ itself does not collapse a repeated id.
            enqueue("jobs.cancellations.revoke_discount", intent.shop_id, intent.redemption_id, queue_name="rewards",
                    job_id=revoke_job_id(intent.shop_id, intent.redemption_id),
                    rate_limit=platform_api_limit(intent.shop_id))
        elif isinstance(intent, NotifyCustomer):
            # jobs.emails records each (shop, key) send in email_sends, so a repeat sends nothing.
            # The id comes from the key so the daily runs can ask Redis whether the email's job
            # exists (jobs.emails.without_email_jobs); RQ itself does not collapse a repeated id.
            enqueue("jobs.emails.send_notification", intent.shop_id, intent.customer_id, intent.template, intent.key,
                    queue_name="emails", job_id=email_job_id(intent.shop_id, intent.key))
        else:
            raise TypeError(f"no dispatcher for intent {type(intent).__name__}")
