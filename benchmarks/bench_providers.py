"""HTTP email-provider sends: what mailscope_providers adds to a send, and to unrelated HTTP calls.

Servers run in their own processes (the local Postmark and SendGrid stand-ins
of tests/support/provider_servers, and moto_server for SES), so they do not
compete with the client for the GIL. Cases, run interleaved:
- Postmark `POST /email` over a requests Session and over an httpx Client, and a
  SendGrid Mail Send through the sendgrid SDK: uninstrumented, and instrumented
  with the real SDK (TracerProvider + BatchSpanProcessor dropping spans, SDK
  MeterProvider); for requests also with mailscope's whole pipeline in front of
  the BatchSpanProcessor, and, for scale, with only the upstream
  opentelemetry-instrumentation-requests (its HTTP span) instead (informational);
- an unrelated `GET` over the same requests Session (not a send endpoint): the
  price every other HTTP call of the app pays for the URL check;
- SES `send_email` through boto3 against moto_server (a separate group, fewer
  operations: moto takes milliseconds per call).

Besides wall time, each case records the CPU time of the calling thread per
operation, steadier than wall time on a shared machine.
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks.harness import Ratio, Section, ServerProcess, interleaved, sdk_providers

PROVIDER_SERVERS = "tests.support.provider_servers"
SENDER = "bench@sender.example.com"
RECIPIENT = "reader@inbox.example.org"


class _Instrumentation:
    """Switch the provider instrumentor on with a given SDK, or off."""

    def __init__(self):
        from mailscope.instrumentation.providers import ProviderInstrumentor

        self.instrumentor = ProviderInstrumentor()
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        self.upstream = RequestsInstrumentor()
        self.providers = {"sdk": sdk_providers(False), "pipeline": sdk_providers(True), "upstream": sdk_providers(False)}
        self.current = None

    def use(self, which: str | None) -> None:
        if which == self.current:
            return
        if self.current is not None:
            (self.upstream if self.current == "upstream" else self.instrumentor).uninstrument()
        if which is not None:
            tracer_provider, meter_provider = self.providers[which]
            (self.upstream if which == "upstream" else self.instrumentor).instrument(
                tracer_provider=tracer_provider, meter_provider=meter_provider)
        self.current = which

    def shutdown(self):
        self.use(None)
        for tracer_provider, meter_provider in self.providers.values():
            tracer_provider.shutdown()
            meter_provider.shutdown()


def run(quick: bool) -> Section:
    import boto3
    import botocore.config
    import httpx
    import requests
    import sendgrid

    from mailscope.config import reload_settings
    from tests.support.provider_servers import MotoServer

    repeats = 3 if quick else 9
    http_ops, ses_ops = (100, 20) if quick else (300, 60)
    postmark = ServerProcess(PROVIDER_SERVERS, "postmark", name="postmark server")
    sg_server = ServerProcess(PROVIDER_SERVERS, "sendgrid", name="sendgrid server")
    moto = MotoServer().start()
    reload_settings(provider_endpoints=f"postmark=127.0.0.1:{postmark.port}/email*")
    inst = _Instrumentation()
    cpu: dict[str, list[float]] = {}
    headers = {"X-Postmark-Server-Token": "pm-server-token", "Accept": "application/json"}
    message = {"From": SENDER, "To": RECIPIENT, "Subject": "weekly digest", "TextBody": "A short body line. " * 8}
    session, client = requests.Session(), httpx.Client(headers=headers)
    sg = sendgrid.SendGridAPIClient(api_key="SG.test-key", host=sg_server.url)
    sg_body = {"personalizations": [{"to": [{"email": RECIPIENT}]}], "from": {"email": SENDER},
               "subject": "weekly digest", "content": [{"type": "text/plain", "value": "A short body line. " * 8}]}
    ses = boto3.client("ses", region_name="us-east-1", endpoint_url=moto.url, aws_access_key_id="bench",
                       aws_secret_access_key="bench", config=botocore.config.Config(retries={"total_max_attempts": 1}))
    ses.verify_email_identity(EmailAddress=SENDER)

    def case(name, which, call):
        def run_case(n: int) -> None:
            inst.use(which)
            started = time.thread_time()
            for _ in range(n):
                call()
            cpu.setdefault(name, []).append((time.thread_time() - started) / n)

        return name, run_case

    def pm_requests():
        session.post(f"{postmark.url}/email", headers=headers, json=message).raise_for_status()

    def pm_httpx():
        client.post(f"{postmark.url}/email", json=message).raise_for_status()

    def unrelated():
        session.get(f"{postmark.url}/status")

    def sendgrid_send():
        sg.send(sg_body)

    def ses_send():
        ses.send_email(Source=SENDER, Destination={"ToAddresses": [RECIPIENT]},
                       Message={"Subject": {"Data": "weekly digest"}, "Body": {"Text": {"Data": "body"}}})

    http_cases = dict([
        case(PM_REQ, None, pm_requests), case(PM_REQ_SDK, "sdk", pm_requests), case(PM_REQ_PIPE, "pipeline", pm_requests),
        case(PM_REQ_UPSTREAM, "upstream", pm_requests),
        case(PM_HTTPX, None, pm_httpx), case(PM_HTTPX_SDK, "sdk", pm_httpx),
        case(OTHER, None, unrelated), case(OTHER_SDK, "sdk", unrelated),
        case(SG, None, sendgrid_send), case(SG_SDK, "sdk", sendgrid_send),
    ])
    ses_cases = dict([case(SES, None, ses_send), case(SES_SDK, "sdk", ses_send)])
    try:
        medians = interleaved(http_cases, http_ops, repeats)
        medians.update(interleaved(ses_cases, ses_ops, repeats))
    finally:
        inst.shutdown()
        session.close()
        client.close()
        postmark.stop()
        sg_server.stop()
        moto.stop()
        reload_settings()

    section = Section("HTTP email providers: sends to local provider servers, and unrelated HTTP calls")
    section.rows = list(medians.items())
    cpu_median = {name: statistics.median(values) for name, values in cpu.items()}
    for label, instrumented, plain in (
        ("Postmark over requests", PM_REQ_SDK, PM_REQ), ("Postmark over httpx", PM_HTTPX_SDK, PM_HTTPX),
        ("SendGrid SDK", SG_SDK, SG), ("SES via boto3 + moto", SES_SDK, SES),
        ("unrelated requests GET", OTHER_SDK, OTHER), ("Postmark over requests + pipeline", PM_REQ_PIPE, PM_REQ),
        ("for scale: upstream requests instrumentation alone", PM_REQ_UPSTREAM, PM_REQ),
    ):
        section.ratios.append(Ratio(f"{label}: wall, instrumented / not", medians[instrumented] / medians[plain]))
        section.ratios.append(Ratio(f"{label}: client CPU, instrumented / not",
                                    cpu_median[instrumented] / cpu_median[plain]))
        section.notes.append(
            f"{label}: per call, wall {medians[plain] * 1e6:.0f} us uninstrumented, "
            f"{(medians[instrumented] - medians[plain]) * 1e6:+.0f} us instrumented; client CPU "
            f"{cpu_median[plain] * 1e6:.0f} us, {(cpu_median[instrumented] - cpu_median[plain]) * 1e6:+.0f} us")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    section.notes.append(f"medians of {repeats} interleaved repeats; servers in separate processes; "
                         f"1-min load average at the end {load:.2f} on {os.cpu_count()} CPUs")
    return section


PM_REQ = "Postmark via requests, uninstrumented"
PM_REQ_SDK = "Postmark via requests, instrumented (SDK)"
PM_REQ_PIPE = "Postmark via requests, instrumented + mailscope pipeline"
PM_REQ_UPSTREAM = "Postmark via requests, opentelemetry-instrumentation-requests only"
PM_HTTPX = "Postmark via httpx, uninstrumented"
PM_HTTPX_SDK = "Postmark via httpx, instrumented (SDK)"
OTHER = "unrelated GET via requests, uninstrumented"
OTHER_SDK = "unrelated GET via requests, instrumented (SDK)"
SG = "SendGrid SDK, uninstrumented"
SG_SDK = "SendGrid SDK, instrumented (SDK)"
SES = "SES send_email via moto, uninstrumented"
SES_SDK = "SES send_email via moto, instrumented (SDK)"
