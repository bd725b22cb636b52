"""A shop as a person names it (a CLI argument, a widget's `?shop=`): its uid, or its domain
written any way that store's domain is, or was, stored. The one lookup of a shop by such a
reference: the widget API and every CLI command go through it."""
from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from app.models import Shop
from integrations.woocommerce.urls import stored_forms, valid_store_url


def ref_domains(ref: str) -> set[str]:
    """The `shops.domain` values `ref` may name: as written (a Shopify domain is a bare host);
    with `https://` when the scheme is left out (WooCommerce stores the full URL); and, for a
    store URL, every form it may be stored under (normalised, or with `:443` from before)."""
    ref = ref.strip().rstrip("/")
    url = ref if "://" in ref else f"https://{ref}"
    store_url = valid_store_url(url, allow_http=True)
    return {ref, url, *(stored_forms(store_url) if store_url else ())}


def names(ref: str, uid: str, domain: str) -> bool:
    """Whether `ref` names the shop with this uid and domain, as find_shop would find it."""
    ref = ref.strip().rstrip("/")
    return ref == uid or domain in ref_domains(ref)


def find_shop(session: Session, ref: str, *, active: bool = False, by_id: bool = False) -> Shop | None:
    """The shop `ref` names (uid or domain; with `by_id`, its numeric id too); with `active`,
    only an active one. If two rows hold forms of one store, the active one, then the oldest."""
    ref = ref.strip().rstrip("/")
    if "\x00" in ref:  # no shop has one, and PostgreSQL refuses it in a query (a 500)
        return None
    conditions: list[ColumnElement[bool]] = [Shop.uid == ref, Shop.domain.in_(ref_domains(ref))]
    if by_id and ref.isascii() and ref.isdigit() and int(ref) < 2**63:  # ids are BIGINT
        conditions.append(Shop.id == int(ref))
    statement = select(Shop).where(or_(*conditions))
    if active:
        statement = statement.where(Shop.status == "active")
    return session.scalars(statement.order_by((Shop.status == "active").desc(), Shop.id).limit(1)).first()
