"""A tiny stand-in service for `make demo` until the newsletter demo lands: SQLite via SQLAlchemy."""

from sqlalchemy import create_engine, text

engine = create_engine("sqlite:///:memory:")
with engine.begin() as conn:
    conn.execute(text("create table subscribers (id integer primary key, domain text)"))
    for i in range(20):
        conn.execute(text("insert into subscribers (domain) values (:d)"), {"d": f"example{i % 3}.org"})
    rows = conn.execute(text("select domain, count(*) from subscribers group by domain")).all()
print("subscribers by domain:", dict(rows))
