"""Program settings, referral settings and the win-back campaign."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from marshmallow import Schema

from app.admin.api.registry import commit, operation
from app.admin.schemas.program import (WINBACK_SETTINGS, ReferralSettingsSchema, WinbackCampaignSchema,
                                       WinbackQuerySchema, WinbackSettingsSchema)
from app.extensions import db
from app.loyalty.program import ProgramSettingsSchema, program_settings
from app.loyalty.settings_admin import (SET_BY_SAVE, ReferralSettings, referral_settings, update_referral_settings,
                                        update_settings)
from app.loyalty.winback import campaign_results
from app.models import Shop

# The settings document is the domain's own schema; the change set is the same fields, none required,
# less those only the save itself sets (sending one is an unknown field, 422).
SettingsChangesSchema = Schema.from_dict({k: f for k, f in ProgramSettingsSchema._declared_fields.items()
                                          if k not in SET_BY_SAVE}, name="ProgramSettingsChanges")


@operation("/settings", "GET", tag="program", summary="The shop's program settings",
           response=ProgramSettingsSchema())
def get_settings(identity):
    return program_settings(db.session.get(Shop, identity.shop_id))


@operation("/settings", "PATCH", tag="program", summary="Change program settings (only the fields sent)",
           permission="settings", body=SettingsChangesSchema(), response=ProgramSettingsSchema())
def patch_settings(identity, body):
    settings = update_settings(db.session, identity.shop_id, body, actor=identity.actor)
    commit()
    return settings


@operation("/referral-settings", "GET", tag="program", summary="Referral rewards and cap",
           response=ReferralSettingsSchema())
def get_referral_settings(identity):
    return referral_settings(db.session, identity.shop_id)


@operation("/referral-settings", "PUT", tag="program", summary="Set referral rewards and cap",
           permission="settings", body=ReferralSettingsSchema(), response=ReferralSettingsSchema())
def put_referral_settings(identity, body):
    result = update_referral_settings(db.session, identity.shop_id, ReferralSettings(**body), actor=identity.actor)
    commit()
    return result


def _campaign(shop_id: int, days: int) -> dict:
    settings = program_settings(db.session.get(Shop, shop_id))
    since = datetime.now(UTC) - timedelta(days=days)
    results = campaign_results(db.session, shop_id, since)
    return {"settings": {k: getattr(settings, k) for k in WINBACK_SETTINGS},
            "results": {"since": since, "conversion_rate": results.conversion_rate,
                        "holdout_conversion_rate": results.holdout_conversion_rate, **results.__dict__}}


@operation("/winback", "GET", tag="program", summary="The win-back campaign: settings and results",
           query=WinbackQuerySchema(), response=WinbackCampaignSchema())
def get_winback(identity, query):
    return _campaign(identity.shop_id, query["days"])


@operation("/winback", "PATCH", tag="program", summary="Change the win-back campaign's settings",
           permission="settings", body=WinbackSettingsSchema(), response=WinbackCampaignSchema())
def patch_winback(identity, body):
    update_settings(db.session, identity.shop_id, body, actor=identity.actor)
    commit()
    return _campaign(identity.shop_id, 90)

