"""Earn rules, rewards and tiers: list, create, read, replace, delete."""
from __future__ import annotations

from marshmallow import Schema, fields

from app.admin.api.registry import commit, operation
from app.admin.schemas.program import EarnRuleSchema, RewardSchema, TierSchema
from app.extensions import db
from app.loyalty.catalog import delete_item, get_item, list_items, save_item
from app.models import EarnRule, Reward, Tier


def _register(path: str, model, schema: type[Schema], noun: str) -> None:
    list_schema = Schema.from_dict({"items": fields.List(fields.Nested(schema), required=True)},
                                   name=f"{schema.__name__.removesuffix('Schema')}List")
    tag = path.strip("/")

    def list_view(identity):
        return {"items": list_items(db.session, identity.shop_id, model)}

    def create_view(identity, body):
        row = save_item(db.session, identity.shop_id, model, body, actor=identity.actor)
        commit()
        return row

    def get_view(identity, item_id):
        return get_item(db.session, identity.shop_id, model, item_id)

    def put_view(identity, item_id, body):
        row = save_item(db.session, identity.shop_id, model, body, actor=identity.actor, item_id=item_id)
        commit()
        return row

    def delete_view(identity, item_id):
        delete_item(db.session, identity.shop_id, model, item_id, actor=identity.actor)
        commit()

    snake = noun.replace(" ", "_")
    for view, verb in ((list_view, "list"), (create_view, "create"), (get_view, "get"), (put_view, "replace"),
                       (delete_view, "delete")):
        view.__name__ = f"{verb}_{snake}"
    operation(path, "GET", tag=tag, summary=f"List {noun}s", response=list_schema())(list_view)
    operation(path, "POST", tag=tag, summary=f"Create a {noun}", permission="settings", body=schema(),
              response=schema(), status=201)(create_view)
    item = f"{path}/<int:item_id>"
    operation(item, "GET", tag=tag, summary=f"One {noun}", response=schema())(get_view)
    operation(item, "PUT", tag=tag, summary=f"Replace a {noun}", permission="settings", body=schema(),
              response=schema())(put_view)
    operation(item, "DELETE", tag=tag, summary=f"Delete a {noun}", permission="settings")(delete_view)


_register("/earn-rules", EarnRule, EarnRuleSchema, "earn rule")
_register("/rewards", Reward, RewardSchema, "reward")
_register("/tiers", Tier, TierSchema, "tier")
