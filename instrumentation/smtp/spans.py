"""The `smtp.connect` and `email.send` span lifecycles shared by smtplib and aiosmtplib.

The wrappers in `smtp.smtplib` and `smtp.aiosmtplib` only translate each client's calls
into the calls of `SMTPTelemetry`; every decision about spans lives here.

smtp.connect
    One span per connection, covering its setup: the TCP (or implicit TLS)
    connect and greeting, EHLO/HELO, STARTTLS and AUTH. It starts when
    `connect()` is called and its end time is the end of the last setup command,
    so time the app spends between commands (rendering, say) is not counted.
    Setup is over, and the span is exported, when the first mail transaction
    starts (or, if the client still has to send its first EHLO implicitly, when
    that transaction ends: an implicit EHLO belongs to the connection setup),
    when the connection closes, or when the client object is garbage collected.
    A setup step that fails ends it at once with ERROR. A reused connection
    never calls connect() again, so it produces no new smtp.connect span;
    reconnecting the same client object starts a new one.

email.send
    One span per message: `sendmail`, `send_message` (which calls sendmail; the
    inner call adds its envelope to the outer span instead of opening another)
    and `aiosmtplib.send` (whose span also covers connecting, so smtp.connect is
    its child). The span is current while the send runs. A refusal of some
    recipients leaves it OK, with one event per refused recipient.

Per-client state is one attribute on the client object (`_mailscope_smtp`), so
there is no process-wide table to bound. The transaction in progress is held in
a ContextVar, which is per thread and per asyncio task.
"""

from __future__ import annotations

import contextvars
import time
import weakref

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from mailscope import attributes as attr
from mailscope._safety import internal_error
from mailscope.instrumentation.common import send as common

PROVIDER = attr.PROVIDER_SMTP
STATE_KEY = "_mailscope_smtp"


class ClientState:
    """What mailscope remembers about one client object."""

    __slots__ = ("address", "port", "span", "last_end_ns", "connecting", "finalizer", "code", "text",
                 "server_values")

    def __init__(self):
        self.address = None
        self.port = None
        self.server_values = None  # ((address, port), send-span attributes) for reuse
        self.code = None  # the latest setup reply, written to the span when it ends
        self.text = None
        self.span = None  # the open smtp.connect span, if setup is not over
        self.last_end_ns = None
        self.connecting = False
        self.finalizer = None


class Transaction:
    """One email.send in progress."""

    __slots__ = ("client", "span", "recipients", "code", "text", "has_headers", "has_envelope", "tokens")

    def __init__(self, client, span):
        self.client = client
        self.span = span
        self.recipients = None
        self.code = None
        self.text = None
        self.has_headers = False
        self.has_envelope = False
        self.tokens = None


_current: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("mailscope_smtp_tx", default=None)


def current_transaction(instance) -> Transaction | None:
    """The send in progress on this context that `instance` belongs to (or may adopt)."""
    tx = _current.get()
    if tx is None:
        return None
    if tx.client is instance:
        return tx
    if tx.client is None:  # aiosmtplib.send: the first client used inside it is its client
        return tx
    return None


def state_of(instance, create: bool = False) -> ClientState | None:
    """The client's state, kept in its __dict__ (a client class with __slots__ gets no connect spans)."""
    namespace = getattr(instance, "__dict__", None)
    if namespace is None:
        return None
    state = namespace.get(STATE_KEY)
    if state is None and create:
        state = ClientState()
        namespace[STATE_KEY] = state
    return state


def _end_connect(state: ClientState) -> None:
    span = state.span
    if span is None:
        return
    state.span = None
    finalizer = state.finalizer
    state.finalizer = None
    if finalizer is not None:
        finalizer.detach()
    code, text = state.code, state.text
    state.code = state.text = None
    try:
        values = common.reply_attributes(code, text)
        if values:
            span.set_attributes(values)
    finally:  # whatever happens, the span ends
        span.end(end_time=state.last_end_ns)


def _salvage(state: ClientState | None) -> None:
    """After an internal error: end the connect span rather than leave it open forever."""
    try:
        if state is not None:
            state.connecting = False
            _end_connect(state)
    except Exception:
        pass


def _abandoned(state: ClientState) -> None:
    # the client object was collected with its setup span still open
    try:
        _end_connect(state)
    except Exception:
        internal_error("smtp.connect finalizer")


class SMTPTelemetry:
    """Turns SMTP client calls into spans and metrics. Every method swallows its own errors."""

    def __init__(self, tracer, recipients_metric: common.RecipientsMetric, dialect):
        self.tracer = tracer
        self.recipients_metric = recipients_metric
        self.dialect = dialect

    # --- smtp.connect ------------------------------------------------------------
    def connect_started(self, instance, address, port, tls: bool):
        """Open the smtp.connect span; returns a token for `connect_call_done`, or None."""
        state = None
        try:
            state = state_of(instance, create=True)
            if state is None:
                return None
            if state.connecting:
                return None  # LMTP.connect calling SMTP.connect: one span
            _end_connect(state)  # connect() again without close()
            state.address, state.port = address, port
            values = {attr.OPERATION: attr.OP_SMTP_CONNECT, attr.PROVIDER: PROVIDER, attr.SMTP_TLS: bool(tls)}
            if address:
                values[attr.SERVER_ADDRESS] = str(address)
            if isinstance(port, int) and port > 0:
                values[attr.SERVER_PORT] = port
            span = self.tracer.start_span(attr.SPAN_SMTP_CONNECT, kind=SpanKind.CLIENT, attributes=values)
            state.span = span
            state.last_end_ns = None
            state.code = state.text = None
            try:
                state.finalizer = weakref.finalize(instance, _abandoned, state)
            except TypeError:
                state.finalizer = None
            token = otel_context.attach(trace.set_span_in_context(span))
            state.connecting = True
            return (state, token)
        except Exception:
            internal_error("smtp.connect start")
            _salvage(state)
            return None

    def connect_call_done(self, handle, code=None, text=None, exc: BaseException | None = None,
                          server=None, tls=None, refused_greeting: str | None = None) -> None:
        """connect() returned (greeting code/text) or raised `exc`."""
        if handle is None:
            return
        state, token = handle
        try:
            otel_context.detach(token)
        except Exception:
            internal_error("smtp.connect context")
        try:
            state.connecting = False
            span = state.span
            if span is None:
                return
            if server is not None:
                address, port = server
                state.address, state.port = address, port
                if address:
                    span.set_attribute(attr.SERVER_ADDRESS, str(address))
                if isinstance(port, int) and port > 0:
                    span.set_attribute(attr.SERVER_PORT, port)
            if tls is not None:
                span.set_attribute(attr.SMTP_TLS, bool(tls))
            if exc is not None:
                self._fail_connect(state, exc)
                return
            if refused_greeting is not None:
                # the server answered the connection with a refusal: the client
                # raises `refused_greeting` for it (smtplib's constructor does)
                span.set_attribute(attr.ERROR_TYPE, refused_greeting)
                span.set_status(Status(StatusCode.ERROR))
                self._step(state, code, text)
                _end_connect(state)
                return
            if state.code is None:
                self._step(state, code, text)  # the greeting
            else:
                # aiosmtplib runs STARTTLS/AUTH inside connect(): their replies
                # came after the greeting it returns, and stay the final reply
                state.last_end_ns = time.time_ns()
        except Exception:
            internal_error("smtp.connect end")
            _salvage(state)

    @staticmethod
    def _step(state: ClientState, code, text) -> None:
        state.code, state.text = code, text
        state.last_end_ns = time.time_ns()

    def _fail_connect(self, state: ClientState, exc: BaseException) -> None:
        # the reply attributes are the failure's own (none for a timeout or TLS error)
        state.code = state.text = None
        state.last_end_ns = time.time_ns()
        try:
            code, text, _ = self.dialect.exception_details(exc)
            common.mark_error(state.span, exc, code, text)
        finally:
            _end_connect(state)

    def setup_step(self, instance, code=None, text=None, exc: BaseException | None = None, tls: bool | None = None):
        """EHLO/HELO/STARTTLS/AUTH finished (or raised `exc`) on `instance`."""
        state = None
        try:
            state = state_of(instance)
            if state is None or state.span is None:
                return
            if tls is not None:
                state.span.set_attribute(attr.SMTP_TLS, bool(tls))
            if exc is not None:
                self._fail_connect(state, exc)
            else:
                self._step(state, code, text)
        except Exception:
            internal_error("smtp.connect step")
            _salvage(state)

    def setup_over(self, instance, *, unless_ehlo_pending: bool = False) -> None:
        """End the open smtp.connect span (a transaction started, or the connection closed)."""
        state = None
        try:
            namespace = getattr(instance, "__dict__", None)  # state_of(), inlined: this runs twice per send
            state = namespace.get(STATE_KEY) if namespace is not None else None
            if state is None or state.span is None or state.connecting:
                return
            if unless_ehlo_pending and self.dialect.ehlo_pending(instance):
                return
            if state.last_end_ns is None:
                state.last_end_ns = time.time_ns()
            _end_connect(state)
        except Exception:
            internal_error("smtp.connect finish")
            _salvage(state)

    # --- email.send --------------------------------------------------------------
    def send_started(self, instance, envelope=None, message=None) -> Transaction | None:
        """Open an email.send span for `instance` (None: aiosmtplib.send, client not yet known).

        `envelope` is (recipients, message data) from sendmail's arguments,
        `message` an email.message.Message from send_message's: what is known
        before the send goes into the span's initial attributes at once.
        """
        span = None
        try:
            tx = Transaction(instance, None)
            values = {attr.OPERATION: attr.OP_SEND, attr.PROVIDER: PROVIDER}
            try:
                if instance is not None:
                    values.update(self._server_values(instance))
                if message is not None:
                    values.update(self._message_values(tx, message))
                if envelope is not None:
                    values.update(self._envelope_values(tx, *envelope))
            except Exception:
                internal_error("email.send attributes")
            span = tx.span = self.tracer.start_span(attr.SPAN_SEND, kind=SpanKind.CLIENT, attributes=values)
            var_token = _current.set(tx)
            try:
                ctx_token = otel_context.attach(trace.set_span_in_context(span))
            except BaseException:
                _current.reset(var_token)
                raise
            tx.tokens = (var_token, ctx_token)
            return tx
        except Exception:
            internal_error("email.send start")
            if span is not None:  # the send goes on uninstrumented; end what was started
                try:
                    span.end()
                except Exception:
                    pass
            return None

    def adopt(self, tx: Transaction, instance) -> None:
        """A client method ran inside aiosmtplib.send's span: it is that send's client."""
        if tx.client is None:
            tx.client = instance
            try:
                tx.span.set_attributes(self._server_values(instance))
            except Exception:
                internal_error("email.send server")

    def _server_values(self, instance) -> dict:
        state = state_of(instance)
        if state is not None and state.address:
            cached = state.server_values
            if cached is not None and cached[0] == (state.address, state.port):
                return cached[1]
            address, port = state.address, state.port
        else:
            address, port = self.dialect.server_of(instance)
        values = {}
        if address:
            values[attr.SERVER_ADDRESS] = str(address)
        if isinstance(port, int) and port > 0:
            values[attr.SERVER_PORT] = port
        if state is not None and state.address:
            state.server_values = ((address, port), values)  # every send on this connection reuses it
        return values

    def _envelope_values(self, tx: Transaction, recipients, message) -> dict:
        if tx.has_envelope:
            return {}
        tx.has_envelope = True
        addresses = common.normalize_recipients(recipients)
        tx.recipients = addresses
        values = common.envelope_attributes(PROVIDER, addresses)
        size = self.dialect.message_size(message)
        if size is not None:
            values[attr.MESSAGE_BYTES] = size
        if not tx.has_headers:
            tx.has_headers = True
            values.update(common.message_attributes(common.headers_from_raw(message)))
        return values

    def _message_values(self, tx: Transaction, message) -> dict:
        if tx.has_headers:
            return {}
        tx.has_headers = True
        return common.message_attributes(common.headers_from_message(message))

    def add_envelope(self, tx: Transaction, recipients, message) -> None:
        """The envelope the client actually sends, learnt inside a send already started."""
        try:
            values = self._envelope_values(tx, recipients, message)
            if values:
                tx.span.set_attributes(values)
        except Exception:
            internal_error("email.send envelope")

    def add_message(self, tx: Transaction, message) -> None:
        """Message-ID hash and mapped headers of an email.message.Message, inside a started send."""
        try:
            values = self._message_values(tx, message)
            if values:
                tx.span.set_attributes(values)
        except Exception:
            internal_error("email.send message")

    def data_reply(self, instance, code, text) -> None:
        tx = current_transaction(instance)
        if tx is not None:
            tx.code, tx.text = code, text

    def _close(self, tx: Transaction) -> None:
        tokens, tx.tokens = tx.tokens, None
        if tokens is not None:
            var_token, ctx_token = tokens
            try:
                otel_context.detach(ctx_token)
            finally:
                _current.reset(var_token)
        tx.span.end()

    # The recipients metric is recorded once the span has ended: a metric failure can
    # then cost nothing but the metric.
    def send_ok(self, tx: Transaction, result) -> None:
        accepted = refused = 0
        try:
            span = tx.span
            refusals = self.dialect.result_refusals(result)
            refused = common.add_refusal_events(span, refusals) if refusals else 0
            code, text = tx.code, tx.text
            if code is None:
                code, text = self.dialect.result_reply(result)
            values = common.reply_attributes(code, text)
            values[attr.RECIPIENTS_REFUSED] = refused
            span.set_attributes(values)
            accepted = max(0, len(tx.recipients) - refused) if tx.recipients is not None else 0
        except Exception:
            internal_error("email.send result")
        self.send_closed(tx)
        self._count(accepted, refused)

    def send_failed(self, tx: Transaction, exc: BaseException) -> None:
        refused = 0
        try:
            span = tx.span
            code, text, refusals = self.dialect.exception_details(exc)
            if refusals is not None:
                refused = common.add_refusal_events(span, refusals)
                span.set_attribute(attr.RECIPIENTS_REFUSED, refused)
            common.mark_error(span, exc, code, text)
        except Exception:
            internal_error("email.send error")
        self.send_closed(tx)
        self._count(0, refused)

    def _count(self, accepted: int, refused: int) -> None:
        try:
            self.recipients_metric.record(PROVIDER, accepted=accepted, refused=refused)
        except Exception:
            internal_error("email.send recipients metric")

    def send_closed(self, tx: Transaction) -> None:
        try:
            self._close(tx)
        except Exception:
            internal_error("email.send end")

