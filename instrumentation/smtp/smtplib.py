"""smtplib (`SMTP`, `SMTP_SSL`, `LMTP`): wrappers that feed `smtp.spans.SMTPTelemetry`.

Wrapped methods (on the classes, so subclasses inherit them): `connect` (and
`LMTP.connect`, which handles Unix sockets and defers to SMTP.connect for TCP:
one span), `ehlo`, `helo`, `starttls`, `login` (setup steps), `sendmail`,
`send_message` (transactions), `data` (the final reply of a transaction, which
sendmail does not return) and `close` (setup is over; quit() calls it).

Each wrapper calls the original exactly once with the app's own arguments and
returns its result or lets its exception propagate unchanged; the telemetry
calls around it swallow their own errors.
"""

from __future__ import annotations

import smtplib

from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from mailscope._safety import internal_error
from mailscope.instrumentation.common import send as common
from mailscope.instrumentation.providers import tracking as delivery_tracking
from mailscope.instrumentation.smtp.spans import SMTPTelemetry, current_transaction

CONNECT_ERROR = common.type_name(smtplib.SMTPConnectError)
GREETING_OK = 220

SETUP_METHODS = ("ehlo", "helo", "login")
WRAPPED = (
    (smtplib.SMTP, ("connect", "ehlo", "helo", "starttls", "login", "sendmail", "send_message", "data", "close")),
    (smtplib.LMTP, ("connect",)),
)


class SmtplibDialect:
    """How smtplib reports servers, replies and refusals."""

    @staticmethod
    def server_of(instance):
        address = getattr(instance, "_host", None) or None
        port = None
        sock = getattr(instance, "sock", None)
        if sock is not None:
            try:
                peer = sock.getpeername()
                if isinstance(peer, tuple):
                    port = peer[1]
            except OSError:
                pass
        return address, port

    @staticmethod
    def ehlo_pending(instance) -> bool:
        return getattr(instance, "helo_resp", None) is None and getattr(instance, "ehlo_resp", None) is None

    @staticmethod
    def message_size(message):
        # smtplib sends bytes as they are and str with lone CR/LF fixed to CRLF
        return common.message_size(message)

    @staticmethod
    def result_refusals(result):
        if not result:
            return ()
        return [(address, *_pair(reply)) for address, reply in result.items()]

    @staticmethod
    def result_reply(result):
        """sendmail returns only the refusals: the final reply comes from the `data` wrapper."""
        return None, None

    @staticmethod
    def exception_details(exc):
        """(code, text, refusals or None) carried by an smtplib exception."""
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            refused = exc.recipients if isinstance(exc.recipients, dict) else {}
            refusals = [(address, *_pair(reply)) for address, reply in refused.items()]
            code, text = (refusals[-1][1], refusals[-1][2]) if refusals else (None, None)
            return code, text, refusals
        if isinstance(exc, smtplib.SMTPResponseException):
            return exc.smtp_code, exc.smtp_error, None
        return None, None, None


def _pair(reply):
    try:
        code, text = reply
        return code, text
    except (TypeError, ValueError):
        return None, None


def _arg(args, kwargs, index, name, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def connect_target(instance, args, kwargs):
    """(host, port) as smtplib.SMTP.connect resolves them (`host:port`, default port)."""
    host = _arg(args, kwargs, 0, "host", "localhost")
    port = _arg(args, kwargs, 1, "port", 0)
    if not isinstance(host, str):
        return None, None
    if host.startswith("/"):  # LMTP over a Unix socket
        return host, None
    if not port and host.find(":") == host.rfind(":"):
        name, colon, number = host.rpartition(":")
        if colon:
            host = name
            port = int(number) if number.isdigit() else None
    if not port:
        port = getattr(instance, "default_port", None)
    return host, port if isinstance(port, int) else None


def make_wrappers(tel: SMTPTelemetry) -> dict:
    def connect(wrapped, instance, args, kwargs):
        handle = None
        try:
            host, port = connect_target(instance, args, kwargs)
            handle = tel.connect_started(instance, host, port, tls=isinstance(instance, _SSL_CLASSES))
        except Exception:
            internal_error("smtplib connect")
        if handle is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.connect_call_done(handle, exc=exc)
            raise
        code, text = _pair(result)
        tel.connect_call_done(handle, code, text, refused_greeting=None if code == GREETING_OK else CONNECT_ERROR)
        return result

    def setup(wrapped, instance, args, kwargs):  # ehlo, helo, login
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_step(instance, exc=exc)
            raise
        code, text = _pair(result)
        tel.setup_step(instance, code, text)
        return result

    def starttls(wrapped, instance, args, kwargs):
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_step(instance, exc=exc)
            raise
        code, text = _pair(result)
        tel.setup_step(instance, code, text, tls=True)
        return result

    def transaction(wrapped, instance, args, kwargs, known):
        tx = current_transaction(instance)
        if tx is not None:  # send_message -> sendmail: one span, the inner call adds what it knows
            tel.adopt(tx, instance)
            if "envelope" in known:
                tel.add_envelope(tx, *known["envelope"])
            tel.setup_over(instance, unless_ehlo_pending=True)
            return wrapped(*args, **kwargs)
        tel.setup_over(instance, unless_ehlo_pending=True)
        tx = tel.send_started(instance, **known)
        if tx is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            tel.setup_over(instance)
            tel.send_failed(tx, exc)
            raise
        tel.setup_over(instance)
        tel.send_ok(tx, result)
        return result

    def sendmail(wrapped, instance, args, kwargs):
        if len(args) >= 3:  # the usual call: sendmail(from_addr, to_addrs, msg)
            known = {"envelope": (args[1], args[2])}
        else:
            known = {"envelope": (_arg(args, kwargs, 1, "to_addrs"), _arg(args, kwargs, 2, "msg"))}
        return transaction(wrapped, instance, args, kwargs, known)

    def send_message(wrapped, instance, args, kwargs):
        return transaction(wrapped, instance, args, kwargs, {"message": _arg(args, kwargs, 0, "msg")})

    def data(wrapped, instance, args, kwargs):
        if delivery_tracking.enabled():  # a provider relay gets the send's context in a header
            args, kwargs = delivery_tracking.guarded(delivery_tracking.smtplib_data, instance,
                                                     current_transaction(instance), args, kwargs,
                                                     fallback=(args, kwargs))
        result = wrapped(*args, **kwargs)
        code, text = _pair(result)
        tel.data_reply(instance, code, text)
        return result

    def close(wrapped, instance, args, kwargs):
        tel.setup_over(instance)
        return wrapped(*args, **kwargs)

    return {
        "connect": connect, "ehlo": setup, "helo": setup, "login": setup, "starttls": starttls,
        "sendmail": sendmail, "send_message": send_message, "data": data, "close": close,
    }


_SSL_CLASSES = tuple(c for c in (getattr(smtplib, "SMTP_SSL", None),) if c is not None)


def instrument(tel: SMTPTelemetry) -> None:
    wrappers = make_wrappers(tel)
    for cls, methods in WRAPPED:
        for method in methods:
            wrap_function_wrapper(cls, method, wrappers[method])


def uninstrument() -> None:
    for cls, methods in WRAPPED:
        for method in methods:
            unwrap(cls, method)
