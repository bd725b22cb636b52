"""Keyset pages over shop-scoped rows: newest first, resumable from the last id seen."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: int | None  # the id to continue below; None on the last page


def keyset_page(session: Session, stmt: Select, id_column: Any, cursor: int | None, limit: int) -> Page:
    """Rows of `stmt` ordered by `id_column` descending, after `cursor` (an id), at most `limit`."""
    limit = max(1, min(limit, MAX_LIMIT))
    if cursor is not None:
        stmt = stmt.where(id_column < cursor)
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, rows[-1].id if more else None)
