"""What instrumenting loads: aiosmtplib and the delivery receiver only when the app uses them.

A fresh interpreter each time, so no other test has imported them already. aiosmtplib is
still instrumented whether the app imports it after instrumentation (the launcher's case)
or before, and an uninstrumented SMTP instrumentor leaves a later import alone.
"""

import subprocess
import sys
import textwrap

import pytest

from tests.support.launcher import REPO, base_env

SCRIPT = textwrap.dedent(
    r'''
    import sys
    from opentelemetry.sdk.trace import TracerProvider
    from mailscope.instrumentation.smtp import SMTPInstrumentor
    from mailscope.instrumentation.providers import ProviderInstrumentor

    def wrapped():
        import aiosmtplib, aiosmtplib.api, aiosmtplib.smtp
        fns = [aiosmtplib.smtp.SMTP.sendmail, aiosmtplib.smtp.SMTP.connect, aiosmtplib.send, aiosmtplib.api.send]
        return [hasattr(f, "__wrapped__") for f in fns]

    provider = TracerProvider()
    smtp = SMTPInstrumentor()
    if sys.argv[1] == "before":
        import aiosmtplib
    smtp.instrument(tracer_provider=provider)
    ProviderInstrumentor().instrument(tracer_provider=provider)
    loaded = sorted(m for m in ("aiosmtplib", "mailscope.delivery.receiver", "mailscope.delivery.web", "http.server")
                    if m in sys.modules)
    print("loaded at start:", loaded)
    if sys.argv[1] == "uninstrumented first":
        smtp.uninstrument()
        print("imported after uninstrument:", wrapped())
        smtp.instrument(tracer_provider=provider)
    print("instrumented:", wrapped())
    from aiosmtplib import send
    print("from-import:", hasattr(send, "__wrapped__"))
    smtp.uninstrument()
    print("uninstrumented:", wrapped())
    smtp.instrument(tracer_provider=provider)
    import aiosmtplib.smtp
    print("again:", wrapped(), hasattr(aiosmtplib.smtp.SMTP.sendmail.__wrapped__, "__wrapped__"))
    from mailscope.delivery import wsgi_app, Receiver
    print("delivery on use:", callable(wsgi_app), Receiver.__name__)
    '''
)


@pytest.mark.parametrize("order", ["after", "before", "uninstrumented first"])
def test_aiosmtplib_and_the_receiver_load_only_when_used_and_aiosmtplib_is_instrumented(order):
    done = subprocess.run([sys.executable, "-c", SCRIPT, order], env=base_env(), cwd=str(REPO), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = [
        "loaded at start: " + ("['aiosmtplib']" if order == "before" else "[]"),
        "instrumented: [True, True, True, True]",
        "from-import: True",
        "uninstrumented: [False, False, False, False]",
        "again: [True, True, True, True] False",  # wrapped once, not twice
        "delivery on use: True Receiver",
    ]
    if order == "uninstrumented first":
        expected.insert(1, "imported after uninstrument: [False, False, False, False]")
    assert done.stdout.splitlines() == expected, done.stderr
