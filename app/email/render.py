"""Render a lifecycle email (HTML + plain text) and build the EmailMessage that carries it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from app.email.i18n import resolve_locale, translator

TEMPLATES = ("tier_reached", "reward_issued", "birthday", "points_expired", "points_expiring", "referral_completed",
             "winback_reminder", "winback_incentive")
# Consent-based mail: only to customers who accepted marketing.
MARKETING_TEMPLATES = frozenset({"birthday", "points_expiring", "winback_reminder", "winback_incentive"})
# Sent even after an unsubscribe: the answer to the shopper's own redemption (the code exists
# nowhere else) and points taken from their account. Everything else stops at an unsubscribe.
TRANSACTIONAL_TEMPLATES = frozenset({"reward_issued", "points_expired"})

_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$")
_env = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True, default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# Headers a mail provider reads raw (RFC 2369 / RFC 8058): written as given, never turned
# into RFC 2047 encoded-words (the email package does that to a word longer than a line).
_RAW_HEADERS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
_MAX_LINE = 78  # RFC 5322 2.1.1 SHOULD; a single target longer than that stays whole (MUST is 998)


class _MailPolicy(EmailPolicy):
    """email.policy.SMTP (CRLF), but the _RAW_HEADERS go out as plain ASCII, folded only at the
    whitespace between list items (RFC 2369 allows it there), never inside a URL."""

    def fold(self, name, value):
        raw = self._fold_raw(name, value)
        return raw if raw is not None else super().fold(name, value)

    def fold_binary(self, name, value):
        raw = self._fold_raw(name, value)
        return raw.encode("ascii") if raw is not None else super().fold_binary(name, value)

    def _fold_raw(self, name, value):
        text_value = str(value)
        if name.lower() not in _RAW_HEADERS or not text_value.isascii():
            return None  # anything else (or a non-ASCII value, which must be encoded): the email package's folding
        lines = [f"{name}:"]
        items = text_value.split(", ")
        for index, item in enumerate(items):
            piece = item + ("," if index < len(items) - 1 else "")
            if index and len(lines[-1]) + 1 + len(piece) > _MAX_LINE:
                lines.append("")
            lines[-1] += " " + piece
        return self.linesep.join(lines) + self.linesep


MAIL_POLICY = _MailPolicy(linesep="\r\n")


@dataclass(frozen=True)
class Branding:
    """The shop's look in emails. Colours are checked (they go into style attributes)."""

    primary_color: str = "#4338ca"
    background_color: str = "#f4f4f5"
    text_color: str = "#18181b"
    logo_url: str | None = None

    @classmethod
    def from_settings(cls, values: dict[str, Any] | None) -> Branding:
        values = values or {}
        defaults = cls()
        colours = {name: values[name] if isinstance(values.get(name), str) and _HEX_COLOUR.match(values[name])
                   else getattr(defaults, name) for name in ("primary_color", "background_color", "text_color")}
        logo = values.get("logo_url")
        return cls(**colours, logo_url=logo if isinstance(logo, str) and logo.startswith("https://") else None)


@dataclass(frozen=True)
class EmailContext:
    """Everything a template may show; built by the job from the database."""

    shop_name: str
    locale: str
    first_name: str | None
    points_balance: int
    tier_name: str | None = None
    affordable_reward: str | None = None   # the best reward the balance buys now
    shop_url: str | None = None
    branding: Branding = field(default_factory=Branding)
    reward_name: str | None = None        # reward_issued
    code: str | None = None               # reward_issued
    points: int | None = None             # birthday / winback_incentive (added), points_expired / points_expiring (amount)
    expires_on: date | None = None        # points_expiring


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render(template: str, ctx: EmailContext, unsubscribe_url: str) -> RenderedEmail:
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    locale = resolve_locale(ctx.locale)
    t = translator(locale)
    values = {
        "t": t, "ctx": ctx, "template": template, "locale": locale, "unsubscribe_url": unsubscribe_url,
        "shop": ctx.shop_name, "brand": ctx.branding,
        "greeting": t("greeting", name=ctx.first_name) if ctx.first_name else t("greeting_anonymous"),
        "expires_on": ctx.expires_on.strftime(t("date_format")) if ctx.expires_on else "",
        # Counts stay ints: t() writes them in the locale's grouping, singular for 1 (app.email.i18n).
        "points": ctx.points if ctx.points is not None else ctx.points_balance,
    }
    subject = t(f"{template}.subject", shop=ctx.shop_name, tier=ctx.tier_name or "", points=values["points"])
    # Subjects are headers: never let a shop or tier name smuggle a line break in.
    subject = " ".join(subject.split())
    return RenderedEmail(
        subject=subject,
        text=_env.get_template(f"{template}.txt").render(values),
        html=_env.get_template(f"{template}.html").render(values),
    )


def build_message(rendered: RenderedEmail, *, mail_from: str, to_address: str, to_name: str | None,
                  unsubscribe_url: str | None, unsubscribe_mailto: str | None = None, message_id: str | None = None,
                  locale: str = "en") -> EmailMessage:
    """The MIME message: text/plain + text/html alternatives and, given an unsubscribe_url, the
    RFC 8058 one-click headers (left off transactional mail, which an unsubscribe does not stop)."""
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["Subject"] = _one_line(rendered.subject)
    msg["From"] = _one_line(mail_from)
    msg["To"] = formataddr((_one_line(to_name), to_address)) if to_name else to_address
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    if message_id:
        msg["Message-ID"] = message_id
    msg["Content-Language"] = resolve_locale(locale)
    if unsubscribe_url:
        targets = [f"<{unsubscribe_url}>"] + ([f"<mailto:{unsubscribe_mailto}>"] if unsubscribe_mailto else [])
        msg["List-Unsubscribe"] = ", ".join(targets)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def _one_line(value: str) -> str:
    """Names and subjects come from shoppers and merchants: a CR/LF in one would make the header
    unsendable (the email library refuses it), so line breaks become spaces."""
    return " ".join(value.split())
