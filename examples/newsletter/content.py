"""Per-recipient content: profile and product lookups, then the subject, HTML and text renders.

The producer calls `Personalizer.personalize` once per recipient. It lives in a
module of its own (not the producer's `__main__`) so a deployment can name it as
one unit of work, e.g. `MAILSCOPE_OPERATIONS=personalize=examples.newsletter.content:Personalizer.personalize`,
which is what `make demo` does: the lookups and the three renders then sit under
one `personalize` operation, and the report can tell database time from render
time. This module knows nothing about telemetry.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined, select_autoescape
from sqlalchemy import select

from examples.newsletter import settings as settings_mod
from examples.newsletter.models import Campaign, Product, Profile

TEMPLATES = Path(__file__).resolve().parent / "templates"


class Personalizer:
    def __init__(self, settings: settings_mod.Settings):
        self.templates = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined if settings.strict_templates else Undefined,
        )
        self.campaign_template = "weekly_digest_v2.html" if settings.missing_variable else "weekly_digest.html"

    def render(self, name: str, context: dict) -> str:
        # get_template per call, as most apps do: Jinja2's cache serves it after the first load
        return self.templates.get_template(name).render(context)

    def personalize(self, session, campaign: Campaign, recipient) -> dict:
        """The queue payload for one recipient."""
        profile = session.get(Profile, recipient.id)
        products = session.scalars(
            select(Product).where(Product.category == profile.favorite_category).order_by(Product.price).limit(4)
        ).all()
        context = {
            "campaign_name": campaign.name,
            "first_name": recipient.first_name,
            "city": recipient.city,
            "plan": recipient.plan,
            "favorite_category": profile.favorite_category,
            "loyalty_points": profile.loyalty_points,
            "orders": profile.orders,
            "products": [{"name": p.name, "price": float(p.price)} for p in products],
            "unsubscribe_url": f"https://shop.example/u/{uuid.uuid5(uuid.NAMESPACE_URL, recipient.email).hex}",
            "preferences_url": "https://shop.example/preferences",
        }
        return {
            "message_id": uuid.uuid4().hex,
            "campaign_id": campaign.id,
            "subscriber_id": recipient.id,
            "to": recipient.email,
            "subject": self.render("subject.txt", context).strip(),
            "html": self.render(self.campaign_template, context),
            "text": self.render("weekly_digest.txt", context),
            "attempt": 1,
        }
