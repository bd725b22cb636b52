"""Audit log, GDPR data requests, failed jobs and analytics."""
from __future__ import annotations

from datetime import date, timedelta

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.admin.schemas.common import Id, PageQuerySchema, Text, aware_datetime, page_schema
from app.loyalty.audit import ACTOR_SEARCH_MAX_LENGTH

MAX_ANALYTICS_DAYS = 366  # app.loyalty.analytics refuses longer periods too
COMPUTED_AT = ("when the figures were computed: the hourly snapshot's time for the last 7/30/90/365 days, "
               "else the time of the request (computed live)")


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    customer_id = fields.Integer(allow_none=True)
    details = fields.Dict()
    created_at = aware_datetime()


class AuditQuerySchema(PageQuerySchema):
    actor = Text(max_length=ACTOR_SEARCH_MAX_LENGTH, load_default=None)  # a full actor, longer than stored
    customer_id = Id(load_default=None)
    since = aware_datetime(load_default=None)
    until = aware_datetime(load_default=None)


class DataRequestSchema(Schema):
    id = fields.Integer(required=True)
    platform_request_id = fields.String(required=True)
    customer_id = fields.Integer(allow_none=True)
    requested_at = aware_datetime(allow_none=True)
    created_at = aware_datetime()


class DataExportSchema(DataRequestSchema):
    export = fields.Dict(required=True, metadata={"description": "everything Lojal holds about the shopper"})


class FailedJobSchema(Schema):
    id = fields.String(required=True)
    function = fields.String(required=True)
    queue = fields.String(required=True)
    failed_at = aware_datetime(allow_none=True)
    error = fields.String(required=True, metadata={"description": "last line of the exception"})


class FailedJobListSchema(Schema):
    items = fields.List(fields.Nested(FailedJobSchema), required=True)


class RetriedSchema(Schema):
    requeued = fields.List(fields.String(), required=True)


class AnalyticsPeriodSchema(Schema):
    # The period starts at local midnight of `start`: east of UTC, the calendar's first day's
    # is in year 0 in UTC, which a datetime cannot hold.
    start = fields.Date(required=True, validate=validate.Range(min=date.min + timedelta(days=1)))
    # The period ends at midnight after `end`: the calendar's last day has none.
    end = fields.Date(required=True, validate=validate.Range(max=date.max - timedelta(days=1)),
                      metadata={"description": "inclusive"})

    @validates_schema
    def _period(self, data: dict, **_) -> None:
        if "start" in data and "end" in data:
            if data["end"] < data["start"]:
                raise ValidationError("must not be before start", "end")
            if (data["end"] - data["start"]).days + 1 > MAX_ANALYTICS_DAYS:
                raise ValidationError(f"at most {MAX_ANALYTICS_DAYS} days", "end")


class AnalyticsSeriesQuerySchema(AnalyticsPeriodSchema):
    format = fields.String(load_default="json", validate=validate.OneOf(["json", "csv"]))


class AnalyticsSummarySchema(Schema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    metrics = fields.Dict(required=True, metadata={"description": "app.loyalty.analytics.summary"})
    computed_at = aware_datetime(required=True, metadata={"description": COMPUTED_AT})


class AnalyticsSeriesSchema(Schema):
    start = fields.Date(required=True)
    end = fields.Date(required=True)
    days = fields.List(fields.Dict(), required=True, metadata={"description": "one object per day"})
    computed_at = aware_datetime(required=True, metadata={"description": COMPUTED_AT})


AuditPageSchema = page_schema(AuditEntrySchema, "AuditPage")
DataRequestPageSchema = page_schema(DataRequestSchema, "DataRequestPage")
