"""Orders pulled from a WooCommerce store through REST v3: the connect backfill and the reconciliation.

Both page through `GET orders` and apply each order's events through the domain's one entry
point (`apply_event`), one transaction per order, so they are idempotent with each other and with
the webhooks: running either twice leaves the same ledger.

- Backfill: orders created in the last 12 months (`after`), as history: they build customers and
  order stats, and earn only if the shop's `backfill_points` is on. Orders it finds placed since
  the store was connected are live sales, as in a reconciliation.
- Reconciliation: orders modified since the last sync minus an overlap (`modified_after`), as live
  events, so an order whose webhook never came (WooCommerce never retries a delivery) earns like
  any other; then the same for the trash (`status=trash`: the default `any` leaves trashed
  orders out). Orders placed before the store was connected stay history even here.

Both list by creation date, oldest first, by page (an offset), in a set bounded by the run's start
so that it can only shrink while we read: created `before` it, and for a reconciliation also
`modified_before` it (an order saved during the run, restored from the trash included, leaves
the set instead of entering it; the next run's overlap reads it). It does shrink: an order
trashed (or otherwise saved) between two page reads leaves it, and every later order moves one
place forward, so one would slip from the next page onto a page already read. X-WP-Total shows
it: when it drops by N between two reads, the run steps back to the page holding the first of
the N places that moved and reads on from there (re-applying an order is a no-op).
Dates go out in UTC with `dates_are_gmt=true` (otherwise WooCommerce reads them in the site's
timezone).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from app.loyalty.calendar import add_months
from app.loyalty.events import OrderPaid, OrderRefundsListed, OrderRestored
from app.models import Shop
from integrations.woocommerce import parsers
from integrations.woocommerce.client import call_response
from integrations.sync import is_history, sync_order

PAGE_SIZE = 50
BACKFILL_MONTHS = 12
# Orders saved while a run reads can straddle its start time: read back a little. Re-applying
# an order is a no-op.
RECONCILE_OVERLAP = timedelta(minutes=10)


@dataclass
class SyncRun:
    """Where a backfill or reconciliation is: carried from page to page and from job to job."""

    mode: str                 # "backfill" | "reconcile"
    since: datetime           # `after` (backfill) or `modified_after` (reconcile)
    started_at: datetime      # becomes shop.orders_synced_at when the run completes
    page: int = 1             # the next page to read
    done: int = 0             # orders applied so far
    total_estimate: int | None = None
    skipped: int = 0          # malformed orders logged and passed over
    trash: bool = False       # reading the trashed orders (a reconciliation's second pass)
    listed: int | None = None  # X-WP-Total at the last page read in this pass (see the module's doc)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "since": self.since.isoformat(), "started_at": self.started_at.isoformat()}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> SyncRun:
        return cls(**{**values, "since": datetime.fromisoformat(values["since"]),
                      "started_at": datetime.fromisoformat(values["started_at"])})


ProgressCallback = Callable[[SyncRun], None]
IntentsCallback = Callable[[list], None]


def start_backfill(now: datetime) -> SyncRun:
    return SyncRun("backfill", since=add_months(now, -BACKFILL_MONTHS), started_at=now)


def start_reconcile(shop: Shop, now: datetime) -> SyncRun | None:
    """None until a backfill (or an earlier reconciliation) has set the shop's sync cursor."""
    if shop.orders_synced_at is None:
        return None
    return SyncRun("reconcile", since=shop.orders_synced_at - RECONCILE_OVERLAP, started_at=now)


def sync_orders(session: Session, shop: Shop, run: SyncRun, *, max_pages: int | None = None,
                on_progress: ProgressCallback | None = None, after_commit: IntentsCallback | None = None) -> str:
    """Read the run's pages from `run.page`, one committed transaction per order.

    `run` is updated after each page, so if a call raises (401, 429, 5xx) the caller can resume
    from the last completed page. Returns "done", or "paused" after `max_pages` (so a job stays
    well inside its timeout and other jobs of the shop get a turn).
    """
    shop_id, installed_at = shop.id, shop.installed_at
    # The HTTP calls use a copy outside the session: the committed `shop` would reload itself
    # (and open a transaction) on every attribute read. No transaction is held across HTTP calls.
    shop = _offline_copy(shop)
    session.commit()
    pages = 0
    while True:
        response = call_response(shop, "get", "orders", params=_params(run))
        orders = response.json() or []
        if run.total_estimate is None and response.headers.get("X-WP-Total", "").isdigit():
            run.total_estimate = int(response.headers["X-WP-Total"])
        for order in orders:
            applied = sync_order(session, shop_id, "woocommerce", order.get("id") if isinstance(order, Mapping) else None,
                                 lambda: _read_order(shop, order, run.mode, installed_at))
            if applied is None:
                run.skipped += 1
                continue
            historical, intents = applied
            run.done += 1
            if after_commit is not None and intents and not historical:  # history notifies nobody
                after_commit(intents)
        total_pages = response.headers.get("X-WP-TotalPages", "")
        back_to = _page_after_shrink(run, response.headers.get("X-WP-Total", ""))
        last = back_to is None and (len(orders) < PAGE_SIZE
                                    or (total_pages.isdigit() and run.page >= int(total_pages)))
        run.page = back_to or run.page + 1
        pages += 1
        if on_progress is not None:
            on_progress(run)
        if last and run.mode == "reconcile" and not run.trash:
            # `status` defaults to "any", which leaves out trashed orders: a trashed order whose
            # order.deleted delivery was lost would keep its points. Read the trash as well.
            run.trash, run.page, run.listed, last = True, 1, None, False
        if last:
            _finish(session, shop_id, run)
            return "done"
        if max_pages is not None and pages >= max_pages:
            return "paused"


# --- one order -> domain events ----------------------------------------------------------

def order_events(shop: Shop, order: Mapping[str, Any], *, historical: bool) -> list:
    """One REST v3 order -> its domain events, through the webhook parser's status machine.

    An order read through the REST API is the same JSON, and the same *state*, as an
    `order.updated` delivery, so it goes through the same parser: a backfilled or reconciled
    order can never be read differently from its webhook. Backfilled ones are history.
    """
    # The store's state as read now: a restoration in it overrides a cancellation that carries no
    # time (a late order.deleted), even at the same modification time (OrderRestored.current).
    # Its refund list too: a refund deleted leaves the order's date_modified as it was.
    events = [replace(event, current=True) if isinstance(event, OrderRestored | OrderRefundsListed) else event
              for event in parsers.parse_event(shop, "order.updated", order, {})]
    if not historical:
        return events
    return [replace(event, historical=True) if isinstance(event, OrderPaid) else event for event in events]


# --- internals ---------------------------------------------------------------------------

def _read_order(shop: Shop, order: Any, mode: str, installed_at: datetime | None) -> tuple[bool, list]:
    historical = is_history(mode, parsers.parse_time(order.get("date_created_gmt")), installed_at)
    return historical, order_events(shop, order, historical=historical)


def _page_after_shrink(run: SyncRun, total: str) -> int | None:
    """The page to read again when the set shrank since the last page read, else None. `shrunk`
    orders left it, perhaps all from pages already read: the orders that were at the `shrunk`
    places before this page's first moved onto an earlier page and were never read."""
    listed, run.listed = run.listed, int(total) if total.isdigit() else None
    if listed is None or run.listed is None or run.listed >= listed or run.page == 1:
        return None
    shrunk = listed - run.listed
    return max(0, (run.page - 1) * PAGE_SIZE - shrunk) // PAGE_SIZE + 1


def _params(run: SyncRun) -> dict[str, Any]:
    bound = "after" if run.mode == "backfill" else "modified_after"
    params = {bound: _iso(run.since), "before": _iso(run.started_at), "dates_are_gmt": "true", "per_page": PAGE_SIZE,
              "page": run.page, "orderby": "date", "order": "asc"}
    if run.mode == "reconcile":
        params["modified_before"] = _iso(run.started_at)  # see the module's doc: the set only shrinks
    return {**params, "status": "trash"} if run.trash else params


def _offline_copy(shop: Shop) -> Shop:
    """Every column's value (keys, settings for the parser), in an object no session tracks."""
    return Shop(**{attr.key: getattr(shop, attr.key) for attr in sa_inspect(Shop).column_attrs})


def _finish(session: Session, shop_id: int, run: SyncRun) -> None:
    shop = session.get(Shop, shop_id, with_for_update=True, populate_existing=True)
    # Never move the cursor back (a slow backfill finishing after a newer reconciliation).
    if shop.orders_synced_at is None or shop.orders_synced_at < run.started_at:
        shop.orders_synced_at = run.started_at
    session.commit()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
