"""`mailscope_smtp`: email.send and smtp.connect spans for smtplib and aiosmtplib.

    SMTPInstrumentor().instrument(tracer_provider=..., meter_provider=...)

smtplib (SMTP, SMTP_SSL, LMTP) is always instrumented; aiosmtplib when it is
installed. The span lifecycles are described in `smtp.spans`; the attributes
follow the contract (email.provider=smtp, server.address/port, recipient count
and domains, refused count and events, message bytes, Message-ID hash, reply
code and RFC 3463 status, smtp.tls, MAILSCOPE_HEADER_ATTRIBUTES mappings).
`mailscope.recipients` is recorded here; the duration histogram is recorded
from the spans by the operation_metrics stage.
"""

from __future__ import annotations

from opentelemetry import trace
from mailscope.instrumentation.common.base import MailscopeInstrumentor

from mailscope._safety import internal_error
from mailscope.instrumentation.smtp import smtplib as smtp_sync
from mailscope.instrumentation.common.send import RecipientsMetric
from mailscope.instrumentation.smtp.spans import SMTPTelemetry
from mailscope.version import __version__


def _aiosmtplib():
    try:
        from mailscope.instrumentation.smtp import aiosmtplib as smtp_async
    except ImportError:  # aiosmtplib is optional
        return None
    return smtp_async


class SMTPInstrumentor(MailscopeInstrumentor):
    def instrumentation_dependencies(self):
        return ()  # smtplib is in the standard library; aiosmtplib is used when present

    def _instrument(self, **kwargs):
        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        recipients = RecipientsMetric(kwargs.get("meter_provider"))
        smtp_sync.instrument(SMTPTelemetry(tracer, recipients, smtp_sync.SmtplibDialect()))
        smtp_async = _aiosmtplib()
        if smtp_async is not None:
            try:
                dialect = smtp_async.AiosmtplibDialect()
                smtp_async.instrument(SMTPTelemetry(tracer, recipients, dialect), dialect)
            except Exception:
                internal_error("instrumenting aiosmtplib")

    def _uninstrument(self, **kwargs):
        smtp_sync.uninstrument()
        smtp_async = _aiosmtplib()
        if smtp_async is not None:
            smtp_async.uninstrument()
