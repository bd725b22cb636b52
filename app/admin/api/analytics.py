"""What the program earns (app.loyalty.analytics): totals for a period and a daily series (JSON or CSV).

The dashboard's standard periods are read from the hourly snapshot when it is fresh
(app.loyalty.analytics.snapshots); `computed_at` says when the figures were computed."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Response

from app.admin.api.registry import operation
from app.admin.schemas.operations import (AnalyticsPeriodSchema, AnalyticsSeriesQuerySchema, AnalyticsSeriesSchema,
                                          AnalyticsSummarySchema)
from app.extensions import db
from app.loyalty import analytics
from app.loyalty.analytics import snapshots


@operation("/analytics/summary", "GET", tag="analytics", summary="Program totals for a period (dates inclusive)",
           query=AnalyticsPeriodSchema(), response=AnalyticsSummarySchema())
def analytics_summary(identity, query):
    found = snapshots.report(db.session, identity.shop_id, query["start"], query["end"], datetime.now(UTC),
                             with_series=False)
    return {"start": query["start"], "end": query["end"], "metrics": found.summary, "computed_at": found.computed_at}


@operation("/analytics/series", "GET", tag="analytics", summary="One row of metrics per day; ?format=csv for CSV",
           query=AnalyticsSeriesQuerySchema(), response=AnalyticsSeriesSchema(),
           alternatives={"text/csv": {"schema": {"type": "string"}}})
def analytics_series(identity, query):
    found = snapshots.report(db.session, identity.shop_id, query["start"], query["end"], datetime.now(UTC),
                             with_summary=False)
    if query["format"] == "csv":
        filename = f"lojal-{query['start']}-{query['end']}.csv"
        return Response(analytics.series_csv(found.series), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return {"start": query["start"], "end": query["end"], "days": found.series, "computed_at": found.computed_at}
