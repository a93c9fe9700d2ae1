"""`mailscope_smtp`: email.send and smtp.connect spans for smtplib and aiosmtplib.

    SMTPInstrumentor().instrument(tracer_provider=..., meter_provider=...)

smtplib (SMTP, SMTP_SSL, LMTP) is always instrumented; aiosmtplib when the app
imports it (a post-import hook, so a process that never uses it does not load it). The span lifecycles are described in `smtp.spans`; the attributes
follow the contract (email.provider=smtp, server.address/port, recipient count
and domains, refused count and events, message bytes, Message-ID hash, reply
code and RFC 3463 status, smtp.tls, MAILSCOPE_HEADER_ATTRIBUTES mappings).
`mailscope.recipients` is recorded here; the duration histogram is recorded
from the spans by the operation_metrics stage.
"""

from __future__ import annotations

import wrapt
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

    _async_hook = None  # the post-import hook of the current instrumentation
    _async_wrapped = False  # aiosmtplib's wrappers are in place

    def _instrument(self, **kwargs):
        tracer = trace.get_tracer(__name__, __version__, kwargs.get("tracer_provider"))
        recipients = RecipientsMetric(kwargs.get("meter_provider"))
        smtp_sync.instrument(SMTPTelemetry(tracer, recipients, smtp_sync.SmtplibDialect()))

        def on_aiosmtplib(module):
            # runs at once when aiosmtplib is already imported, else right after its import;
            # a hook left over from an earlier instrumentation does nothing
            if SMTPInstrumentor._async_hook is not on_aiosmtplib or SMTPInstrumentor._async_wrapped:
                return
            try:
                smtp_async = _aiosmtplib()
                if smtp_async is None:
                    return
                dialect = smtp_async.AiosmtplibDialect()
                SMTPInstrumentor._async_wrapped = True  # before: a partial failure is unwrapped too
                smtp_async.instrument(SMTPTelemetry(tracer, recipients, dialect), dialect)
            except Exception:
                internal_error("instrumenting aiosmtplib")

        SMTPInstrumentor._async_hook = on_aiosmtplib
        try:
            wrapt.register_post_import_hook(on_aiosmtplib, "aiosmtplib")
        except Exception:
            internal_error("aiosmtplib import hook")

    def _uninstrument(self, **kwargs):
        smtp_sync.uninstrument()
        SMTPInstrumentor._async_hook = None
        if SMTPInstrumentor._async_wrapped:
            SMTPInstrumentor._async_wrapped = False
            smtp_async = _aiosmtplib()
            if smtp_async is not None:
                smtp_async.uninstrument()
