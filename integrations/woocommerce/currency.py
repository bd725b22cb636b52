"""An order placed in another currency than the shop's, through a multi-currency plugin: the rate
the plugin left in the order's `meta_data` converts its amounts to the shop's currency.

WooCommerce itself keeps no rate: `currency` and every amount are the shopper's. The plugins
whose order meta we read (each checked against the plugin's own code, see README):
- WooPayments Multi-Currency: `_wcpay_multi_currency_order_exchange_rate` = order-currency units
  per 1 unit of `_wcpay_multi_currency_order_default_currency` (the store's);
- WOOCS: `_woocs_order_rate`, the same direction, against `_woocs_order_base_currency`;
- CURCY (VillaTheme): `wmc_order_info`, every currency's `rate` at checkout against the one
  marked `is_main`;
- Aelia Currency Switcher: `_order_total_base_currency`, the order's total already in the base
  currency (its ratio to `total` is the rate).
A rate naming another base currency than the shop's, or none we can read, converts nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from integrations.base import MalformedPayload

CENT = Decimal("0.01")
Convert = Callable[[Decimal], Decimal]


class UnconvertedCurrency(MalformedPayload):
    """A foreign-currency order without a usable rate: it must not earn on its own amounts."""


def to_shop_currency(payload: Mapping[str, Any], shop_currency: str,
                     money: Callable[[Any], Decimal]) -> Convert | None:
    """None for an order in the shop's currency; else the conversion of its amounts (rounded to
    the cent). Raises UnconvertedCurrency when no plugin left a rate to the shop's currency."""
    currency = payload.get("currency") or shop_currency
    if currency == shop_currency:
        return None
    meta = _meta_by_key(payload)
    for ratio in (_per_base_unit(meta, "_wcpay_multi_currency_order_exchange_rate",
                                 "_wcpay_multi_currency_order_default_currency", shop_currency),
                  _per_base_unit(meta, "_woocs_order_rate", "_woocs_order_base_currency", shop_currency),
                  _curcy(meta, currency, shop_currency),
                  _aelia(meta, payload, money)):
        if ratio is not None:
            base, foreign = ratio
            return lambda amount: (amount * base / foreign).quantize(CENT, rounding=ROUND_HALF_UP)
    raise UnconvertedCurrency(
        f"order in {currency}, the shop's currency is {shop_currency}, and its meta_data holds no exchange rate "
        "to it (WooPayments, WOOCS, CURCY or Aelia): not earning on unconverted amounts")


def _meta_by_key(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {item["key"]: item.get("value") for item in payload.get("meta_data") or []
            if isinstance(item, Mapping) and isinstance(item.get("key"), str)}


def _positive(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def _per_base_unit(meta: Mapping[str, Any], rate_key: str, base_key: str,
                   shop_currency: str) -> tuple[Decimal, Decimal] | None:
    """(1, rate) for a plugin storing order-currency units per base unit, if its base is the shop's."""
    rate = _positive(meta.get(rate_key))
    base = meta.get(base_key)
    if rate is None or (base not in (None, "") and base != shop_currency):
        return None
    return Decimal(1), rate


def _curcy(meta: Mapping[str, Any], currency: str, shop_currency: str) -> tuple[Decimal, Decimal] | None:
    info = meta.get("wmc_order_info")
    if not isinstance(info, Mapping):
        return None  # absent, or stored in a form the REST API did not decode
    main = [code for code, entry in info.items() if isinstance(entry, Mapping) and str(entry.get("is_main")) == "1"]
    order_entry, main_entry = info.get(currency), info.get(shop_currency)
    if main != [shop_currency] or not isinstance(order_entry, Mapping) or not isinstance(main_entry, Mapping):
        return None
    main_rate, order_rate = _positive(main_entry.get("rate")), _positive(order_entry.get("rate"))
    return None if main_rate is None or order_rate is None else (main_rate, order_rate)


def _aelia(meta: Mapping[str, Any], payload: Mapping[str, Any],
           money: Callable[[Any], Decimal]) -> tuple[Decimal, Decimal] | None:
    base_total = _positive(meta.get("_order_total_base_currency"))
    total = money(payload.get("total"))
    # A zero total has no ratio: nothing says what its other amounts are worth.
    return None if base_total is None or total <= 0 else (base_total, total)
