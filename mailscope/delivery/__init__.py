"""Delivery feedback: provider event webhooks become `email.delivery` spans in the send's trace.

    from mailscope.delivery import wsgi_app, asgi_app
    application = wsgi_app()   # mount at /hooks: POST /hooks/mailgun, /sendgrid, /postmark, /ses

or `mailscope webhooks serve --host H --port P`. Keys come from the environment
(`MAILSCOPE_WEBHOOK_*`, see docs/delivery.md); with `MAILSCOPE_DELIVERY_TRACKING=on` the sends
carry their trace context to the provider (`tracking`), and the events come back into the
send's own trace.
"""

from mailscope.delivery.receiver import Receiver
from mailscope.delivery.web import ASGIApp, WSGIApp, asgi_app, serve, wsgi_app

__all__ = ["Receiver", "WSGIApp", "ASGIApp", "wsgi_app", "asgi_app", "serve"]
