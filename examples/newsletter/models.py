"""Subscribers, their profiles, products and campaigns, in SQL through SQLAlchemy.

SQLite by default; PostgreSQL (or any SQLAlchemy database) when DATABASE_URL says so.
`seed(session, n)` fills an empty database with `n` deterministic subscribers.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, Numeric, String, create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker


class Base(DeclarativeBase):
    pass


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    city: Mapped[str] = mapped_column(String(80))
    plan: Mapped[str] = mapped_column(String(20))  # free, plus, premium
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    opted_in: Mapped[bool] = mapped_column(Boolean, default=True)
    profile: Mapped["Profile"] = relationship(back_populates="subscriber", uselist=False)


class Profile(Base):
    __tablename__ = "profiles"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id"), primary_key=True)
    favorite_category: Mapped[str] = mapped_column(String(40))
    loyalty_points: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
    subscriber: Mapped[Subscriber] = relationship(back_populates="profile")


class Product(Base):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(40))
    price: Mapped[float] = mapped_column(Numeric(10, 2))


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    template: Mapped[str] = mapped_column(String(120))
    segment: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    queued: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=lambda: datetime.now(timezone.utc))


def session_factory(database_url: str) -> sessionmaker[Session]:
    engine = create_engine(database_url, future=True)
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)


FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus", "Margaret", "Guido"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Hamilton"]
CITIES = ["Lisbon", "Oslo", "Lyon", "Porto", "Ghent", "Leeds", "Graz", "Turku"]
DOMAINS = ["mail.example.com", "inbox.example.net", "post.example.org", "corp.example.com", "webmail.example.net"]
CATEGORIES = ["books", "coffee", "outdoor", "kitchen", "music"]
PLANS = ["free", "free", "free", "plus", "premium"]


def seed(session: Session, subscribers: int, *, rng_seed: int = 7) -> int:
    """Create products and `subscribers` subscribers unless the database already has them."""
    have = session.scalar(select(func.count()).select_from(Subscriber)) or 0
    if have >= subscribers:
        return have
    rng = random.Random(rng_seed + have)
    if not session.scalar(select(func.count()).select_from(Product)):
        for category in CATEGORIES:
            for n in range(1, 7):
                session.add(Product(name=f"{category.title()} pick {n}", category=category, price=round(5 + n * 3.5, 2)))
    for i in range(have, subscribers):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        sub = Subscriber(
            email=f"{first.lower()}.{last.lower()}{i}@{DOMAINS[i % len(DOMAINS)]}",
            first_name=first,
            last_name=last,
            city=rng.choice(CITIES),
            plan=PLANS[i % len(PLANS)],
            active=i % 17 != 16,  # a few lapsed subscribers the segment leaves out
            opted_in=True,
        )
        sub.profile = Profile(
            favorite_category=rng.choice(CATEGORIES), loyalty_points=rng.randrange(0, 5000), orders=rng.randrange(0, 40)
        )
        session.add(sub)
    session.commit()
    return subscribers
