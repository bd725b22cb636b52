"""What a console form shows for each field (label, control, help); the rules are the schemas'."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import Schema


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    control: str = "number"           # number | text | select | checkbox | textarea | lines
    options: tuple = ()               # select: values, or (value, label) pairs
    help: str | None = None


@dataclass(frozen=True)
class FieldGroup:
    title: str
    fields: tuple[FormField, ...]


def shown_value(value: Any, control: str) -> Any:
    """A stored value as its form control shows it (a list as one line per item)."""
    if control == "lines":
        return "\n".join(value or ())
    return "" if value is None else value


def settings_slice(schema: type[Schema], names: tuple[str, ...], name: str) -> type[Schema]:
    """Some fields of a schema (without its post_load), to validate just what a form edits."""
    return Schema.from_dict({n: schema._declared_fields[n] for n in names}, name=name)
