"""A small newsletter service: the demo application mailscope is shown on.

It is an ordinary app and never imports mailscope. `producer` runs campaigns
(segment query, per-recipient Jinja2 personalization with profile lookups, a
JSON payload pushed onto a Redis list), `worker` pops and sends over SMTP, and
`sink` is the demo's own SMTP server that answers like a real one, failures
included. `settings` reads the NEWSLETTER_* knobs.
"""
