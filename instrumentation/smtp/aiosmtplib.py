"""aiosmtplib: wrappers that feed `smtp.spans.SMTPTelemetry`, as smtp.smtplib does for smtplib.

Wrapped: `SMTP.connect` (which itself runs STARTTLS and login when configured,
all inside one smtp.connect span), `ehlo`, `helo`, `starttls`, `login`,
`sendmail`, `send_message`, `close`, and the one-shot `aiosmtplib.send`
(its email.send span covers connecting too, so smtp.connect is its child).

aiosmtplib's `ehlo` raises SMTPHeloError on a non-250 reply and the client then
falls back to HELO; that is recorded as a reply of the setup, not a failure.
"""

from __future__ import annotations

import aiosmtplib
import aiosmtplib.api
from aiosmtplib import smtp as aiosmtp
from aiosmtplib.errors import SMTPHeloError, SMTPRecipientsRefused, SMTPResponseException
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from mailscope._safety import internal_error
from mailscope.instrumentation.common import send as common
from mailscope.instrumentation.providers import tracking as delivery_tracking
from mailscope.instrumentation.smtp.spans import SMTPTelemetry, current_transaction

# `data` only for delivery tracking's relay header (sendmail returns the final reply's text, and
# raises unless its code is 250)
CLIENT_METHODS = ("connect", "ehlo", "helo", "starttls", "login", "sendmail", "send_message", "close", "data")
COMPLETED = 250
SEND_FUNCTION_HOMES = (aiosmtplib, aiosmtplib.api)


class AiosmtplibDialect:
    """How aiosmtplib reports servers, replies and refusals."""

    @staticmethod
    def server_of(instance):
        path = getattr(instance, "socket_path", None)
        if path is not None:
            return str(path), None
        address = getattr(instance, "hostname", None) or "localhost"
        port = getattr(instance, "port", None)
        if port is None:
            try:
                port = instance._get_default_port()
            except Exception:
                port = None
        return address, port if isinstance(port, int) else None

    @staticmethod
    def ehlo_pending(instance) -> bool:
        return bool(getattr(instance, "is_ehlo_or_helo_needed", False))

    @staticmethod
    def message_size(message):
        return common.message_size(message)

    @staticmethod
    def result_refusals(result):
        try:
            errors = result[0]
        except (TypeError, IndexError, KeyError):
            return ()
        if not errors:
            return ()
        return [(address, getattr(reply, "code", None), getattr(reply, "message", None)) for address, reply in errors.items()]

    @staticmethod
    def result_reply(result):
        """(code, text) of the final reply: sendmail returns (refusals, DATA reply text)."""
        try:
            return COMPLETED, result[1]
        except (TypeError, IndexError, KeyError):
            return None, None

    @staticmethod
    def exception_details(exc):
        """(code, text, refusals or None) carried by an aiosmtplib exception."""
        if isinstance(exc, SMTPRecipientsRefused):
            refusals = [
                (getattr(r, "recipient", None), getattr(r, "code", None), getattr(r, "message", None))
                for r in (exc.recipients or ())
            ]
            code, text = (refusals[-1][1], refusals[-1][2]) if refusals else (None, None)
            return code, text, refusals
        if isinstance(exc, SMTPResponseException):
            return exc.code, exc.message, None
        return None, None, None


def _response(result):
    return getattr(result, "code", None), getattr(result, "message", None)


def _tls_in_use(instance) -> bool | None:
    try:
        return instance.get_transport_info("sslcontext") is not None
    except Exception:
        return None


def make_wrappers(tel: SMTPTelemetry, dialect: AiosmtplibDialect) -> dict:
    async def connect(wrapped, instance, args, kwargs):
        handle = None
        try:
            hostname = kwargs.get("hostname")
            address, port = dialect.server_of(instance)
            if isinstance(hostname, str):
                address = hostname
            port = kwargs.get("port") if isinstance(kwargs.get("port"), int) else port
            handle = tel.connect_started(instance, address, port, tls=bool(getattr(instance, "use_tls", False)))
        except Exception:
            internal_error("aiosmtplib connect")
        if handle is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.connect_call_done(handle, exc=exc, server=_safe_server(dialect, instance))
            raise
        code, text = _response(result)
        tel.connect_call_done(handle, code, text, server=_safe_server(dialect, instance), tls=_tls_in_use(instance))
        return result

    async def setup(wrapped, instance, args, kwargs):  # helo, login
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_step(instance, exc=exc)
            raise
        tel.setup_step(instance, *_response(result))
        return result

    async def ehlo(wrapped, instance, args, kwargs):
        try:
            result = await wrapped(*args, **kwargs)
        except SMTPHeloError as exc:  # the client falls back to HELO
            tel.setup_step(instance, exc.code, exc.message)
            raise
        except BaseException as exc:
            tel.setup_step(instance, exc=exc)
            raise
        tel.setup_step(instance, *_response(result))
        return result

    async def starttls(wrapped, instance, args, kwargs):
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_step(instance, exc=exc)
            raise
        code, text = _response(result)
        tel.setup_step(instance, code, text, tls=True)
        return result

    async def transaction(wrapped, instance, args, kwargs, known):
        tx = current_transaction(instance)
        if tx is not None:  # send_message -> sendmail, or inside aiosmtplib.send
            tel.adopt(tx, instance)
            if "envelope" in known:
                tel.add_envelope(tx, *known["envelope"])
            if "message" in known:
                tel.add_message(tx, known["message"])
            tel.setup_over(instance, unless_ehlo_pending=True)
            return await wrapped(*args, **kwargs)
        tel.setup_over(instance, unless_ehlo_pending=True)
        tx = tel.send_started(instance, **known)
        if tx is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_over(instance)
            tel.send_failed(tx, exc)
            raise
        tel.setup_over(instance)
        tel.send_ok(tx, result)
        return result

    def sendmail(wrapped, instance, args, kwargs):  # returns transaction()'s coroutine: one frame less
        recipients = args[1] if len(args) > 1 else kwargs.get("recipients")
        message = args[2] if len(args) > 2 else kwargs.get("message")
        return transaction(wrapped, instance, args, kwargs, {"envelope": (recipients, message)})

    def send_message(wrapped, instance, args, kwargs):
        message = args[0] if args else kwargs.get("message")
        return transaction(wrapped, instance, args, kwargs, {"message": message})

    def close(wrapped, instance, args, kwargs):
        tel.setup_over(instance)
        return wrapped(*args, **kwargs)

    def data(wrapped, instance, args, kwargs):  # returns the client's own coroutine
        if delivery_tracking.enabled():  # a provider relay gets the send's context in a header
            args, kwargs = delivery_tracking.guarded(delivery_tracking.aiosmtplib_data, instance,
                                                     current_transaction(instance), args, kwargs,
                                                     fallback=(args, kwargs))
        return wrapped(*args, **kwargs)

    async def send(wrapped, instance, args, kwargs):
        message = args[0] if args else kwargs.get("message")
        tx = tel.send_started(None, message=None if isinstance(message, (str, bytes)) else message)
        if tx is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.send_failed(tx, exc)
            raise
        tel.send_ok(tx, result)
        return result

    return {
        "connect": connect, "ehlo": ehlo, "helo": setup, "login": setup, "starttls": starttls,
        "sendmail": sendmail, "send_message": send_message, "close": close, "send": send, "data": data,
    }


def _safe_server(dialect, instance):
    try:
        return dialect.server_of(instance)
    except Exception:
        return None


def instrument(tel: SMTPTelemetry, dialect: AiosmtplibDialect) -> None:
    wrappers = make_wrappers(tel, dialect)
    for method in CLIENT_METHODS:
        wrap_function_wrapper(aiosmtp.SMTP, method, wrappers[method])
    for home in SEND_FUNCTION_HOMES:
        wrap_function_wrapper(home, "send", wrappers["send"])


def uninstrument() -> None:
    for method in CLIENT_METHODS:
        unwrap(aiosmtp.SMTP, method)
    for home in SEND_FUNCTION_HOMES:
        unwrap(home, "send")
