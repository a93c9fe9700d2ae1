"""SMTP send overhead: 500 small messages over one connection to a local aiosmtpd.

The server runs in its own process (`python -m tests.support.smtp_server`) so it
does not compete with the client for the GIL. Cases, run interleaved:
- smtplib, uninstrumented;
- smtplib, instrumented with the real SDK: TracerProvider + BatchSpanProcessor
  with an exporter that drops spans, and an SDK MeterProvider (the issue's goal:
  at most 5% overhead);
- smtplib, instrumented with mailscope's whole pipeline in front of the
  BatchSpanProcessor (slow, memory, metrics, redaction stages): informational,
  it shows what the stages add on top of the instrumentation;
- reference: smtplib uninstrumented, the app wrapping each send in one SDK
  span with the same attributes: the price of a span per send on this machine,
  which any send instrumentation pays, to read the others against;
- the same first two for aiosmtplib.
Each case opens one connection, sends its messages with `sendmail` (the
cheapest client path, so the relative overhead is largest) and quits.

Besides wall time (the goal's measure), each case records the CPU time the
sending thread used per message: on a shared, loaded machine wall time swings
with scheduling, while the CPU the client spends is what instrumentation adds.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import statistics
import time

from benchmarks.harness import Ratio, Section, ServerProcess, interleaved, sdk_providers

SENDER = "bench@sender.example.com"
RECIPIENT = "reader@inbox.example.org"
MESSAGE = (
    b"From: bench@sender.example.com\r\nTo: reader@inbox.example.org\r\n"
    b"Message-ID: <bench.1@sender.example.com>\r\nSubject: weekly digest\r\n\r\n"
    + b"A short transactional message body line.\r\n" * 4
)


class _Instrumentation:
    """Switch the SMTP instrumentor on with a given SDK, or off."""

    def __init__(self):
        from mailscope.instrumentation.smtp import SMTPInstrumentor

        self.instrumentor = SMTPInstrumentor()
        self.providers = {"plain": sdk_providers(False), "pipeline": sdk_providers(True)}
        self.current = None

    def use(self, which: str | None) -> None:
        if which == self.current:
            return
        if self.current is not None:
            self.instrumentor.uninstrument()
        if which is not None:
            tracer_provider, meter_provider = self.providers[which]
            self.instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        self.current = which

    def shutdown(self):
        self.use(None)
        for tracer_provider, meter_provider in self.providers.values():
            tracer_provider.shutdown()
            meter_provider.shutdown()


def run(quick: bool) -> Section:
    ops = 500
    repeats = 3 if quick else 11
    server = ServerProcess("tests.support.smtp_server", name="SMTP server")
    inst = _Instrumentation()

    cpu: dict[str, list[float]] = {}

    def smtplib_case(name, which):
        def case(n: int) -> None:
            inst.use(which)
            with smtplib.SMTP("127.0.0.1", server.port) as client:
                started = time.thread_time()
                for _ in range(n):
                    client.sendmail(SENDER, [RECIPIENT], MESSAGE)
                cpu.setdefault(name, []).append((time.thread_time() - started) / n)

        return name, case

    reference_tracer = inst.providers["plain"][0].get_tracer("bench.reference")
    reference_attributes = {  # what an email.send span carries for these messages
        "mailscope.operation": "send", "email.provider": "smtp", "server.address": "127.0.0.1",
        "server.port": server.port, "email.recipients.count": 1, "email.recipients.domains": ("inbox.example.org",),
        "email.message.bytes": len(MESSAGE), "email.message.id_hash": "0123456789abcdef",
        "smtp.response.code": 250, "smtp.response.enhanced_status": "2.0.0", "email.recipients.refused": 0,
    }

    def reference_case(name):
        """Uninstrumented client; the app itself wraps each send in one SDK span with the same attributes."""

        def case(n: int) -> None:
            inst.use(None)
            with smtplib.SMTP("127.0.0.1", server.port) as client:
                started = time.thread_time()
                for _ in range(n):
                    with reference_tracer.start_as_current_span(name, attributes=reference_attributes):
                        client.sendmail(SENDER, [RECIPIENT], MESSAGE)
                cpu.setdefault(name, []).append((time.thread_time() - started) / n)

        return name, case

    def aiosmtplib_case(name, which):
        import aiosmtplib

        async def send_all(n):
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=False) as client:
                started = time.thread_time()
                for _ in range(n):
                    await client.sendmail(SENDER, [RECIPIENT], MESSAGE)
                cpu.setdefault(name, []).append((time.thread_time() - started) / n)

        def case(n: int) -> None:
            inst.use(which)
            asyncio.run(send_all(n))

        return name, case

    cases = dict([
        smtplib_case(SYNC_PLAIN, None),
        smtplib_case(SYNC_SDK, "plain"),
        smtplib_case(SYNC_PIPELINE, "pipeline"),
        reference_case(SYNC_REFERENCE),
        aiosmtplib_case(ASYNC_PLAIN, None),
        aiosmtplib_case(ASYNC_SDK, "plain"),
    ])
    try:
        medians = interleaved(cases, ops, repeats)
    finally:
        inst.shutdown()
        server.stop()

    section = Section(f"SMTP sends: {ops} small messages over one connection to a local aiosmtpd")
    section.rows = list(medians.items())
    section.ratios = [
        Ratio("smtplib instrumented / uninstrumented", medians[SYNC_SDK] / medians[SYNC_PLAIN], "<= 1.05"),
        Ratio("aiosmtplib instrumented / uninstrumented", medians[ASYNC_SDK] / medians[ASYNC_PLAIN], "<= 1.05"),
        Ratio("smtplib with mailscope pipeline / uninstrumented", medians[SYNC_PIPELINE] / medians[SYNC_PLAIN]),
        Ratio("reference: one bare SDK span per send / uninstrumented", medians[SYNC_REFERENCE] / medians[SYNC_PLAIN]),
    ]
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    for label, instrumented, plain in (("smtplib", SYNC_SDK, SYNC_PLAIN), ("aiosmtplib", ASYNC_SDK, ASYNC_PLAIN),
                                       ("smtplib+pipeline", SYNC_PIPELINE, SYNC_PLAIN),
                                       ("reference span", SYNC_REFERENCE, SYNC_PLAIN)):
        section.ratios.append(Ratio(f"{label} client CPU per message, instrumented / not",
                                    cpu_median[instrumented] / cpu_median[plain]))
        section.notes.append(
            f"{label}: per message, wall {medians[plain] * 1e6:.0f} us uninstrumented, "
            f"{(medians[instrumented] - medians[plain]) * 1e6:+.0f} us instrumented; client CPU "
            f"{cpu_median[plain] * 1e6:.0f} us, {(cpu_median[instrumented] - cpu_median[plain]) * 1e6:+.0f} us"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    section.notes.append(
        f"medians of {repeats} interleaved repeats; server in a separate process; "
        f"1-min load average at the end {load:.2f} on {os.cpu_count()} CPUs"
    )
    return section


SYNC_PLAIN = "smtplib uninstrumented"
SYNC_SDK = "smtplib instrumented (SDK + BatchSpanProcessor)"
SYNC_PIPELINE = "smtplib instrumented + mailscope pipeline"
SYNC_REFERENCE = "smtplib + one bare SDK span per send (reference)"
ASYNC_PLAIN = "aiosmtplib uninstrumented"
ASYNC_SDK = "aiosmtplib instrumented (SDK + BatchSpanProcessor)"
