"""Delivery feedback: provider event webhooks become `email.delivery` spans in the send's trace.

    from mailscope.delivery import wsgi_app, asgi_app
    application = wsgi_app()   # mount at /hooks: POST /hooks/mailgun, /sendgrid, /postmark, /ses

or `mailscope webhooks serve --host H --port P`. Keys come from the environment
(`MAILSCOPE_WEBHOOK_*`, see docs/delivery.md); with `MAILSCOPE_DELIVERY_TRACKING=on` the sends
carry their trace context to the provider (`tracking`), and the events come back into the
send's own trace.

The receiver and the web apps are imported on first use: every instrumented send imports
`mailscope.delivery.tracking`, and a process that only sends email should not load the
receiver, its HTTP server and its signature checks (objects every garbage collection walks).
"""

from __future__ import annotations

__all__ = ["Receiver", "WSGIApp", "ASGIApp", "wsgi_app", "asgi_app", "serve"]

_HOMES = {
    "Receiver": "mailscope.delivery.receiver",
    "WSGIApp": "mailscope.delivery.web",
    "ASGIApp": "mailscope.delivery.web",
    "wsgi_app": "mailscope.delivery.web",
    "asgi_app": "mailscope.delivery.web",
    "serve": "mailscope.delivery.web",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
