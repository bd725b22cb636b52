"""The points ledger as a state machine, on real PostgreSQL.

Two shops with programs drawn at random and a handful of shoppers (one first seen in an order,
so the quick path creates it; one a guest until it signs up and claims its orders) receive
order events through apply_event, as the
webhook jobs deliver them, in any order: paid, fulfilled, cancelled, restored, refunded (before
its order too), plus redemptions (repeated idempotency keys), issued codes, failed issues and
cancellations, staff adjustments, the clock moving on with the release and expiry jobs, the
tier review and a deleted tier. Any step may be applied twice, and any earlier event replayed
later: neither may change anything. After every step the invariants below are checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy import select, text

from app.extensions import db
from app.loyalty import catalog
from app.loyalty.adjustments import adjust_points
from app.loyalty.apply import apply_event
from app.loyalty.errors import InsufficientPoints, LoyaltyError
from app.loyalty.events import (
    CustomerInfo, CustomerUpserted, OrderCancelled, OrderFulfilled, OrderPaid, OrderRefunded, OrderRestored, OrderSnapshot,
)
from app.loyalty.expiry import expire_inactive_points
from app.loyalty.ledger import find_balance_drift
from app.loyalty.pending import release_pending_points
from app.loyalty.program import program_settings
from app.loyalty.redemption_cancel import (
    complete_cancellation, fail_cancellation, refuse_cancellation, request_cancellation,
)
from app.loyalty.redemptions import fail_redemption, mark_issued, redeem_reward
from app.loyalty.tiers import qualifying_values, review_tiers, shop_tiers, tier_for_value
from app.models import Customer, Order, Reward, Shop, Tier
from tests.factories import make_customer, make_reward, make_shop, set_rule

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # a year end within reach: calendar-year tiers roll over
# c2 has no row until its first order; g3 checks out as a guest until it makes an account (c3).
SHOPPERS = ("c0", "c1", "c2", "g3")
GUEST, GUEST_ACCOUNT = "g3", "c3"
ORDERS = 4  # per shop: few enough that events about one order meet
REFUSED = object()  # a step the domain refused (it must have changed nothing)

programs = st.fixed_dictionaries({
    "pending_days": st.sampled_from([0, 7]),
    "negative_balance": st.sampled_from(["allow", "clamp"]),
    "award_on": st.sampled_from(["paid", "fulfilled"]),
    "expiry_months": st.sampled_from([None, 1]),
    "earn_basis": st.sampled_from(["subtotal", "total", "total_excl_tax", "total_excl_shipping"]),
    "rounding": st.sampled_from(["floor", "nearest", "ceil"]),
    "tier_basis": st.sampled_from(["spend", "points"]),
    "tier_period": st.sampled_from(["lifetime", "lifetime", "rolling_12_months", "calendar_year"]),
})
cents = st.integers(0, 40_000).map(lambda c: Decimal(c) / 100)
# Realistic baskets mostly (hypothesis favours small numbers, which earn next to nothing).
baskets = st.one_of(st.sampled_from(["19.99", "64.50", "129.99", "240", "555.55", "1280"]).map(Decimal),
                    st.integers(1, 200_000).map(lambda c: Decimal(c) / 100))
order_specs = st.fixed_dictionaries({
    "shopper": st.integers(0, len(SHOPPERS) - 1),
    "goods": baskets,
    "gift_cards": st.one_of(st.just(Decimal(0)), cents),
    "tips": st.one_of(st.just(Decimal(0)), cents),
    "tax": st.one_of(st.just(Decimal(0)), cents),
    "shipping": st.one_of(st.just(Decimal(0)), cents),
})
shop_ix = st.sampled_from([0, 0, 1])  # the second shop mostly proves the first one's rows are its own
order_ix = st.integers(0, ORDERS - 1)
shopper_ix = st.integers(0, len(SHOPPERS) - 1)
twice = st.booleans()
refund_shares = st.sampled_from(["0.1", "0.25", "0.3333", "0.5", "1", "0.01"])


@dataclass(frozen=True)
class Spec:
    """One order's amounts, fixed for every event about it (as the platform would send them)."""
    shopper: str
    subtotal: Decimal
    total: Decimal
    gift_cards: Decimal
    tips: Decimal
    tax: Decimal
    shipping: Decimal

    @property
    def email(self) -> str:
        return f"{self.shopper}@example.com"

    def eligible(self, basis: str) -> Decimal:
        """README: the basis amount, tips never and gift cards bought in the order never, not below zero."""
        paid = self.total - self.tips
        amount = {"subtotal": self.subtotal, "total": paid, "total_excl_tax": paid - self.tax,
                  "total_excl_shipping": paid - self.shipping}[basis]
        return max(amount - self.gift_cards, Decimal(0))

    def snapshot(self, order_id: str, at: datetime | None) -> OrderSnapshot:
        return OrderSnapshot(order_id, "USD", self.subtotal, self.total, total_tax=self.tax,
                             total_shipping=self.shipping, gift_cards=self.gift_cards, tips=self.tips,
                             customer=None if self.shopper == GUEST else CustomerInfo(self.shopper, email=self.email),
                             email=self.email,
                             updated_at=at)


# One digest per table the ledger domain writes: a replay compares them in one round trip.
_DIGESTS = ", ".join(f"(SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
                     f" WHERE t.shop_id = ANY(:shops)) AS {table}"
                     for table in ("customers", "orders", "ledger_entries", "redemptions", "order_refunds"))
_STATE_SQL = text(f"SELECT {_DIGESTS}")


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.session = db.session
        self.clock = T0
        self.shops: list[Shop] = []
        self.specs: dict[tuple[int, int], Spec] = {}
        self.refund_no = 0
        self.adjust_no = 0
        self.created_redemptions: dict[int, int] = {}  # shop id -> redemptions the domain created
        self.history: list[tuple[str, object]] = []  # (description, callable) safe to replay at any time
        self.reviewed = False  # the last step was a tier review: tiers must equal the qualifying ones

    # --- set-up ------------------------------------------------------------------------------

    @initialize(first=programs, second=programs, nth=st.sampled_from([None, 2, 3]),
                seeds=st.lists(st.sampled_from([0, 100, 700, 2500]), min_size=4, max_size=4))
    def open_shops(self, first, second, nth, seeds):
        """Two shops; c0 and c1 known to each, with a starting balance (a staff adjustment)."""
        seeds = iter(seeds)
        for program in (first, second):
            shop = make_shop(self.session, **program)
            if nth:
                set_rule(self.session, shop, "nth_order", every_n=nth, points=40)
            make_reward(self.session, shop, name="Cheap", points_cost=60)
            for pid in SHOPPERS[:2]:
                customer = make_customer(self.session, shop, platform_customer_id=pid, email=f"{pid}@example.com")
                if points := next(seeds):
                    adjust_points(self.session, shop.id, customer.id, points, reason="welcome", actor="staff:test",
                                  now=self.clock)
            self.shops.append(shop)
            self.created_redemptions[shop.id] = 0

    def teardown(self):
        self.session.rollback()

    # --- helpers -----------------------------------------------------------------------------

    def _tick(self) -> datetime:
        self.clock += timedelta(minutes=1)  # events of one step are newer than every earlier one
        self.reviewed = False
        return self.clock

    def _spec(self, shop: Shop, order: int, drawn: dict) -> Spec:
        key = (shop.id, order)
        if key not in self.specs:
            goods = drawn["goods"]
            gift_cards = min(drawn["gift_cards"], goods)
            subtotal = goods
            total = subtotal + drawn["tax"] + drawn["shipping"] + drawn["tips"]
            self.specs[key] = Spec(SHOPPERS[drawn["shopper"]], subtotal, total, gift_cards, drawn["tips"],
                                   drawn["tax"], drawn["shipping"])
        return self.specs[key]

    def _customer_id(self, shop: Shop, shopper: str) -> int | None:
        return self.session.scalar(select(Customer.id).where(Customer.shop_id == shop.id,
                                                             Customer.email_normalized == f"{shopper}@example.com"))

    def _balance(self, customer_id: int) -> int:
        return self.session.scalar(select(Customer.points_balance).where(Customer.id == customer_id))

    def _refusable(self, call, refusal_is_right):
        """call(); a LoyaltyError must be a right refusal that wrote nothing (REFUSED is returned)."""
        before = self._state()
        try:
            return call()
        except LoyaltyError as exc:
            assert refusal_is_right(exc), exc
            assert self._state() == before, f"a refused request wrote something: {exc}"
            return REFUSED

    def _state(self) -> dict:
        """A digest of every row the ledger domain writes, per table, for both shops (replays compare it)."""
        self.session.flush()
        row = self.session.execute(_STATE_SQL, {"shops": [s.id for s in self.shops]}).one()
        return dict(row._mapping)

    def _run(self, what: str, step, repeat: bool, *, replayable: bool = True):
        """Apply `step()`; with `repeat`, apply it again and require that nothing changed."""
        result = step()
        if repeat:
            before = self._state()
            step()
            assert self._state() == before, f"applying {what} twice changed the state"
        if replayable and result is not REFUSED:  # a refused request retried later may well succeed
            self.history.append((what, step))
        return result

    def _events(self, shop: Shop, events: list, repeat: bool, replayable: bool = True):
        """One webhook's events, applied in order in one go."""
        def step():
            for event in events:
                apply_event(self.session, shop.id, event)
        self._run(" + ".join(map(repr, events)), step, repeat, replayable=replayable)

    def _sale_multiplier_check(self, shop: Shop, order_id: str, apply) -> None:
        """A sale counted for the first time keeps the tier multiplier its customer held before it."""
        spec = self.specs[(shop.id, int(order_id[1:]))]
        held = self.session.scalar(text(
            "SELECT t.multiplier FROM customers c JOIN tiers t ON t.id = c.tier_id"
            " WHERE c.shop_id = :s AND c.email_normalized = :e"), {"s": shop.id, "e": spec.email})
        kept_before = self.session.scalar(select(Order.sale_multiplier).where(
            Order.shop_id == shop.id, Order.platform_order_id == order_id))
        apply()
        self.session.flush()
        kept_after = self.session.scalar(select(Order.sale_multiplier).where(
            Order.shop_id == shop.id, Order.platform_order_id == order_id))
        if kept_before is None and kept_after is not None:
            assert kept_after == (held if held is not None else Decimal(1)), (order_id, kept_after, held)

    # --- order events ------------------------------------------------------------------------

    # One rule per kind, so that the order events are most of the steps. A WooCommerce payload
    # in an earning status is read as OrderRestored then OrderPaid (a no-op restoration unless
    # the order is cancelled in our books), applied together as its webhook job does.
    @rule(s=shop_ix, o=order_ix, spec=order_specs, stamped=st.booleans(), woo=st.booleans(), repeat=twice)
    def order_paid(self, s, o, spec, stamped, woo, repeat):
        """stamped: the snapshot carries the platform's modification time (WooCommerce's always does)."""
        shop, at = self.shops[s], self._tick()
        order_id, order_spec = f"o{o}", self._spec(shop, o, spec)
        body = order_spec.snapshot(order_id, at if stamped or woo else None)
        events = [OrderRestored(order_id, at, body), OrderPaid(body, at)] if woo else [OrderPaid(body, at)]
        self._sale(shop, order_id, events, repeat)

    @rule(s=shop_ix, o=order_ix, spec=order_specs, repeat=twice)
    def order_fulfilled(self, s, o, spec, repeat):
        shop, at = self.shops[s], self._tick()
        order_id, order_spec = f"o{o}", self._spec(shop, o, spec)
        self._sale(shop, order_id, [OrderFulfilled(order_spec.snapshot(order_id, at), at)], repeat)

    @rule(s=shop_ix, o=order_ix, spec=order_specs, trashed=st.booleans(), completed=st.booleans(), repeat=twice)
    def order_restored(self, s, o, spec, trashed, completed, repeat):
        """Back from the trash (trashed: sent there a minute before, its own webhook), or from
        cancelled to processing; completed: shipped as well."""
        shop, at = self.shops[s], self._tick()
        order_id, order_spec = f"o{o}", self._spec(shop, o, spec)
        if trashed:
            self._events(shop, [OrderCancelled(order_id, at)], repeat)
            at = self._tick()
        body = order_spec.snapshot(order_id, at)
        events = [OrderRestored(order_id, at, body), OrderPaid(body, at)]
        if completed and program_settings(shop).award_on == "fulfilled":
            events.append(OrderFulfilled(body, at))
        self._sale(shop, order_id, events, repeat)

    @rule(s=shop_ix, o=order_ix, spec=order_specs, with_body=st.booleans(), repeat=twice)
    def order_cancelled(self, s, o, spec, with_body, repeat):
        """with_body False: WooCommerce's order.deleted, only the id."""
        shop, at = self.shops[s], self._tick()
        order_id, order_spec = f"o{o}", self._spec(shop, o, spec)
        self._events(shop, [OrderCancelled(order_id, at, order_spec.snapshot(order_id, at) if with_body else None)],
                     repeat)

    @rule(s=shop_ix, o=order_ix, spec=order_specs, share=refund_shares, repeat=twice)
    def order_refunded(self, s, o, spec, share, repeat):
        """A partial or whole refund, perhaps of an order not seen yet (it waits for it)."""
        shop, at = self.shops[s], self._tick()
        order_id, order_spec = f"o{o}", self._spec(shop, o, spec)
        amount = max((order_spec.total * Decimal(share)).quantize(Decimal("0.01")), Decimal("0.01"))
        self.refund_no += 1
        self._events(shop, [OrderRefunded(order_id, f"rf{self.refund_no}", amount, at)], repeat)

    def _sale(self, shop: Shop, order_id: str, events: list, repeat: bool) -> None:
        self._sale_multiplier_check(shop, order_id, lambda: self._events(shop, events, repeat))

    @rule(s=shop_ix, repeat=twice)
    def guest_makes_an_account(self, s, repeat):
        """The guest signs up (signup points) and claims its recent guest orders."""
        shop, at = self.shops[s], self._tick()
        event = CustomerUpserted(CustomerInfo(GUEST_ACCOUNT, email=f"{GUEST}@example.com"), at, account_created=True)
        # Later, the same event would claim a guest order restored since: a new act, not a replay.
        self._events(shop, [event], repeat, replayable=False)

    # --- redemptions and adjustments ---------------------------------------------------------

    @rule(s=shop_ix, who=shopper_ix, reward=st.integers(0, 3), key=st.integers(0, 3), repeat=twice)
    def redeem(self, s, who, reward, key, repeat):
        shop, at = self.shops[s], self._tick()
        customer_id = self._customer_id(shop, SHOPPERS[who])
        if customer_id is None:
            return
        reward_id = self.session.scalars(select(Reward.id).where(Reward.shop_id == shop.id).order_by(Reward.id)).all()[reward]
        cost = self.session.get(Reward, reward_id).points_cost

        def step():
            balance = self._balance(customer_id)
            result = self._refusable(lambda: redeem_reward(self.session, shop.id, customer_id, reward_id, f"k{key}", at),
                                     lambda exc: exc.code == "idempotency_key_reused"
                                     or (isinstance(exc, InsufficientPoints) and balance < cost))
            if result is not REFUSED and result.created:
                assert balance >= cost
                self.created_redemptions[shop.id] += 1
            return result

        self._run(f"redeem {SHOPPERS[who]} reward {reward} key k{key}", step, repeat)

    def _redemption(self, shop: Shop, pick: int) -> int | None:
        ids = self.session.scalars(text("SELECT id FROM redemptions WHERE shop_id = :s ORDER BY id"), {"s": shop.id}).all()
        return ids[pick % len(ids)] if ids else None

    @rule(s=shop_ix, pick=st.integers(0, 7), repeat=twice,
          outcome=st.sampled_from(["issued", "failed", "cancel", "cancel_done", "cancel_refused", "cancel_failed"]))
    def redemption_outcome(self, s, pick, outcome, repeat):
        """What the jobs report about a redemption: the issue job made the code or failed for good
        (points back); staff ask to cancel; the revoke job deleted the code (points back), found
        it used (refused) or could not delete it (failed: no points back)."""
        shop, at = self.shops[s], self._tick()
        rid = self._redemption(shop, pick)
        if rid is None:
            return
        if outcome in ("issued", "failed"):
            self._run(f"issue job {outcome} {rid}", lambda: self._issue_attempt(shop, rid, outcome, at), repeat)
        elif outcome == "cancel":
            # Asking twice at once queues one job; asking again after it ended is a new request.
            self._run(f"cancel {rid}", lambda: self._request_cancellation(shop, rid, at), repeat, replayable=False)
        else:
            end = {"cancel_done": lambda: complete_cancellation(self.session, shop.id, rid, True, at),
                   "cancel_refused": lambda: refuse_cancellation(self.session, shop.id, rid, "used in an order", at),
                   "cancel_failed": lambda: fail_cancellation(self.session, shop.id, rid, "platform error", at)}[outcome]
            self._run(f"revoke job {outcome} {rid}", end, repeat)

    def _issue_attempt(self, shop: Shop, rid: int, outcome: str, at: datetime) -> None:
        """As jobs.rewards.issue_discount: an attempt starts only for a pending redemption (one
        started before a cancellation may end during it, before any code exists)."""
        status, issued_at = self.session.execute(text("SELECT status, issued_at FROM redemptions WHERE id = :r"),
                                                 {"r": rid}).one()
        if status == "pending" or (status == "cancelling" and issued_at is None):
            if outcome == "issued":
                mark_issued(self.session, shop.id, rid, f"gid-{rid}", at)
            else:
                fail_redemption(self.session, shop.id, rid, "platform said no", at)

    def _request_cancellation(self, shop: Shop, rid: int, at: datetime) -> None:
        try:
            request_cancellation(self.session, shop.id, rid, "staff:test", "asked by the shopper", at)
        except LoyaltyError as exc:
            assert exc.code == "redemption_closed", exc

    @rule(s=shop_ix, who=shopper_ix, points=st.one_of(st.integers(-300, 300).filter(bool), st.just("all")),
          repeat=twice)
    def staff_adjustment(self, s, who, points, repeat):
        """points "all": the whole balance taken (so that a later reversal meets an empty balance)."""
        shop, at = self.shops[s], self._tick()
        customer_id = self._customer_id(shop, SHOPPERS[who])
        if customer_id is None:
            return
        if points == "all":
            points = -self._balance(customer_id)
            if points >= 0:
                return
        self.adjust_no += 1
        key = f"adj-{self.adjust_no}"

        def step():
            balance = self._balance(customer_id)
            return self._refusable(lambda: adjust_points(self.session, shop.id, customer_id, points, reason="goodwill",
                                                         actor="staff:test", now=at, idempotency_key=key),
                                   lambda exc: isinstance(exc, InsufficientPoints) and balance + points < 0)

        self._run(f"adjust {SHOPPERS[who]} {points} ({key})", step, repeat)

    # --- the clock and the scheduled jobs ----------------------------------------------------

    @rule(days=st.integers(1, 40), repeat=twice)
    def days_pass(self, days, repeat):
        self.clock += timedelta(days=days)
        at = self._tick()
        for shop in self.shops:
            self._run(f"release at {at}", lambda shop=shop: _in_batches(release_pending_points, self.session, shop.id, at),
                      repeat)
            # An expiry run at an old time is not a replay of anything: only repeated at once.
            self._run(f"expire at {at}", lambda shop=shop: _in_batches(expire_inactive_points, self.session, shop.id, at),
                      repeat, replayable=False)

    @rule(s=shop_ix, delete=st.integers(0, 4), repeat=twice)
    def tier_change(self, s, delete, repeat):
        """The tier review (both shops), or staff delete one of a shop's tiers (holders move down)."""
        at = self._tick()
        tiers = shop_tiers(self.session, self.shops[s].id)
        if delete < len(tiers):
            catalog.delete_item(self.session, self.shops[s].id, Tier, tiers[delete].id, actor="staff:test")
            return
        for shop in self.shops:
            self._run(f"review at {at}", lambda shop=shop: review_tiers(self.session, shop.id, at), repeat,
                      replayable=False)
        self.reviewed = True

    @rule(data=st.data())
    def replay_an_earlier_event(self, data):
        if not self.history:
            return
        what, step = data.draw(st.sampled_from(self.history))
        before = self._state()
        step()
        assert self._state() == before, f"replaying {what} later changed the state"

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def cached_sums_are_the_ledger(self):
        for shop in self.shops:
            assert find_balance_drift(self.session, shop.id) == []

    @invariant()
    def no_balance_below_zero_but_by_a_reversal_where_debts_are_allowed(self):
        for shop in self.shops:
            clamp = program_settings(shop).negative_balance == "clamp"
            rows = self.session.execute(text("""
                SELECT id, kind, points, after FROM (
                    SELECT id, kind, points, SUM(points) OVER (PARTITION BY customer_id ORDER BY id) AS after
                    FROM ledger_entries WHERE shop_id = :s) walk
                WHERE points < 0 AND (after < 0 OR (kind = 'expire' AND after <> 0))"""), {"s": shop.id}).all()
            bad = [r for r in rows if r.kind != "reverse" or clamp]
            assert bad == [], f"entries leaving a balance below zero (clamp={clamp}): {bad}"

    @invariant()
    def an_expiry_covers_reversals_once(self):
        """Reversals after an expiry draw on what it took (expiry_cover) at most once in all."""
        rows = self.session.execute(text("""
            SELECT e.id, -e.points AS expired, SUM(r.expiry_cover) AS drawn
            FROM ledger_entries e JOIN ledger_entries r
              ON r.shop_id = e.shop_id AND r.customer_id = e.customer_id AND r.expiry_cover > 0
             AND (r.details ->> 'expire_entry_id')::bigint = e.id
            WHERE e.shop_id = ANY(:shops) AND e.kind = 'expire'
            GROUP BY e.id HAVING SUM(r.expiry_cover) > -e.points"""), {"shops": [s.id for s in self.shops]}).all()
        assert rows == [], f"expiries covering more than they took: {rows}"

    @invariant()
    def orders_take_back_at_most_what_they_granted(self):
        for shop in self.shops:
            settings = program_settings(shop)
            rows = self.session.execute(text("""
                SELECT o.platform_order_id, o.status, o.points_status, o.points_earned, o.points_reversed, o.total,
                       o.refunded_amount, o.eligible_amount, o.paid_at, o.non_earning_amount, o.refunded_non_earning,
                       COALESCE(SUM(l.points + l.pending_delta) FILTER (WHERE l.kind = 'earn'), 0) AS granted,
                       COALESCE(-SUM(l.points + l.pending_delta) FILTER (WHERE l.kind = 'reverse'), 0) AS taken,
                       COALESCE(SUM(l.points + l.pending_delta - l.uncollected - l.expiry_cover), 0) AS net,
                       COALESCE(SUM(l.uncollected), 0) AS outstanding,
                       (SELECT COALESCE(SUM(r.amount), 0) FROM order_refunds r
                         WHERE r.shop_id = o.shop_id AND r.platform_order_id = o.platform_order_id) AS refunds,
                       (SELECT COUNT(*) FROM order_refunds r WHERE r.shop_id = o.shop_id
                           AND r.platform_order_id = o.platform_order_id AND r.applied_at IS NULL) AS unapplied
                FROM orders o LEFT JOIN ledger_entries l ON l.shop_id = o.shop_id AND l.order_id = o.id
                WHERE o.shop_id = :s GROUP BY o.id"""), {"s": shop.id}).all()
            for r in rows:
                assert 0 <= r.points_reversed <= r.points_earned, r
                assert r.taken <= r.granted, f"order took back more than it granted: {r}"
                assert r.outstanding >= 0, f"order settled more than its reversals left uncollected: {r}"
                assert r.net == r.points_earned - r.points_reversed, f"order entries disagree: {r}"
                assert r.unapplied == 0 and r.refunded_amount == r.refunds, f"refund not counted: {r}"
                assert r.points_reversed == _reversal_target(r), f"reversal off its refunded share: {r}"
                if r.paid_at is not None:
                    spec = self.specs[(shop.id, int(r.platform_order_id[1:]))]
                    assert r.eligible_amount == spec.eligible(settings.earn_basis), r

    @invariant()
    def redemptions_match_their_debits(self):
        for shop in self.shops:
            rows = self.session.execute(text("""
                SELECT r.id, r.status, r.points_cost,
                       COALESCE(SUM(-l.points) FILTER (WHERE l.kind = 'redeem'), 0) AS debited,
                       COUNT(l.id) FILTER (WHERE l.kind = 'redeem') AS debits,
                       COALESCE(SUM(l.points) FILTER (WHERE l.kind = 'redeem_reversal'), 0) AS given_back
                FROM redemptions r LEFT JOIN ledger_entries l ON l.shop_id = r.shop_id AND l.redemption_id = r.id
                WHERE r.shop_id = :s GROUP BY r.id"""), {"s": shop.id}).all()
            assert len(rows) == self.created_redemptions[shop.id]
            for r in rows:
                assert r.debits == 1 and r.debited == r.points_cost, r
                assert r.given_back == (r.points_cost if r.status in ("failed", "cancelled") else 0), r

    @invariant()
    def customer_statistics_follow_their_orders(self):
        for shop in self.shops:
            rows = self.session.execute(text("""
                SELECT c.platform_customer_id, c.orders_count, c.total_spent, c.points_earned_lifetime,
                       (SELECT COUNT(*) FROM orders o WHERE o.shop_id = c.shop_id AND o.customer_id = c.id
                           AND o.paid_at IS NOT NULL AND o.status <> 'cancelled') AS sales,
                       (SELECT COALESCE(SUM(o.total - o.refunded_amount), 0) FROM orders o
                         WHERE o.shop_id = c.shop_id AND o.customer_id = c.id
                           AND o.paid_at IS NOT NULL AND o.status <> 'cancelled') AS spent,
                       -- what a clamped reversal left uncollected was never earned (ledger.post_entry)
                       (SELECT COALESCE(SUM(l.points - l.expiry_cover - l.uncollected), 0) FROM ledger_entries l
                         WHERE l.shop_id = c.shop_id AND l.customer_id = c.id
                           AND l.kind IN ('earn', 'release', 'reverse')) AS earned
                FROM customers c WHERE c.shop_id = :s"""), {"s": shop.id}).all()
            for r in rows:
                assert (r.orders_count, r.total_spent, r.points_earned_lifetime) == (r.sales, r.spent, r.earned), r

    @invariant()
    def tiers_follow_the_qualifying_value(self):
        for shop in self.shops:
            settings = program_settings(shop)
            if settings.tier_period != "lifetime" and not self.reviewed:
                continue  # a rolling window moves with the clock alone; only the review follows it
            tiers = shop_tiers(self.session, shop.id)
            threshold = {t.id: t.threshold for t in tiers}
            values = qualifying_values(self.session, shop, settings, self.clock)
            for customer_id, tier_id in self.session.execute(
                    select(Customer.id, Customer.tier_id).where(Customer.shop_id == shop.id)):
                due = tier_for_value(tiers, values.get(customer_id, Decimal(0)))
                if self.reviewed:
                    assert tier_id == (due.id if due else None), (customer_id, tier_id, due)
                elif due is not None:  # promoted at once, demoted only by the review
                    # (no tier yet is the entry tier: a shopper gets it with their first qualifying event)
                    held = threshold[tier_id] if tier_id is not None else Decimal(0)
                    assert held >= due.threshold, (customer_id, tier_id, due)


def _reversal_target(r) -> int:
    """What the order's refunds or cancellation call for, as README's refund rule states it: the
    refunded share of the part that earns (gift cards bought and tips refunded take nothing)."""
    if r.points_earned <= 0:
        return 0
    if r.status == "cancelled":
        return r.points_earned
    refunded, base = r.refunded_amount, r.total - r.non_earning_amount
    if base > 0:
        refunded = max(refunded - min(r.refunded_non_earning, r.non_earning_amount), Decimal(0))
    else:
        base = r.total  # nothing earning: shared by the whole total
    if base <= 0:
        return r.points_earned if refunded > 0 else 0
    exact = r.points_earned * refunded / base
    return min(int(exact.to_integral_value(rounding=ROUND_HALF_UP)), r.points_earned)


def _in_batches(step, session, shop_id: int, at: datetime):
    """A batched domain step run to the end, as jobs.maintenance does (without its commits)."""
    after_id = 0
    while True:
        outcome = step(session, shop_id, at, after_id=after_id)
        if outcome.resume_after is None:
            return
        after_id = outcome.resume_after


def test_ledger_state_machine(app):
    with app.app_context():
        run_state_machine_as_test(LedgerMachine, settings=settings(
            max_examples=30, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))
