"""Background workers' log frames around a send failure (the ninth wave's tuning part, docs/errors-quality.md):
the frame's timestamp and the worker's host and pid must not split one failure into several fingerprints."""

import pytest

from mailscope.processors.errors import classify


@pytest.mark.parametrize("variants", [
    # Celery's `[%(asctime)s: %(levelname)s/%(processName)s]`: a timestamp that a colon and a space end,
    # whatever clock or zone the deployment logs
    ("[2026-03-03T04:05:06Z: ERROR/ForkPoolWorker-3] Task mail.send[1b4e28ba-2fa1-11d2-883f-0016d3cca427] "
     "raised unexpected: SMTPDataError(554, b'5.7.1 Spam message rejected')",
     "[Tue, 03 Mar 2026 04:05:06 +0000: ERROR/ForkPoolWorker-12] Task mail.send[6fa459ea-ee8a-3ca4-894e-db77e160355e] "
     "raised unexpected: SMTPDataError(554, b'5.7.1 Spam message rejected')",
     "[2026-03-03 04:05:06,517: ERROR/ForkPoolWorker-1] Task mail.send[0b1c2d3e-ee8a-3ca4-894e-db77e160355e] "
     "raised unexpected: SMTPDataError(554, b'5.7.1 Spam message rejected')"),
    # Delayed::Job's `[Worker(host:<name> pid:<n>)]`: a host key's value is a host, a pid is a counter
    ("[Worker(host:mailhog pid:4021)] Job UserMailer.welcome_email (id=17) FAILED (0 prior attempts) with "
     "Net::SMTPFatalError: 552 5.2.2 Mailbox quota exceeded",
     "[Worker(host:worker-2.internal pid:77)] Job UserMailer.welcome_email (id=903) FAILED (2 prior attempts) with "
     "Net::SMTPFatalError: 552 5.2.2 Mailbox quota exceeded",
     "[Worker(host:localhost pid:9)] Job UserMailer.welcome_email (id=4) FAILED (1 prior attempts) with "
     "Net::SMTPFatalError: 552 5.2.2 Mailbox quota exceeded"),
])
def test_a_worker_frame_does_not_split_a_failure(variants):
    patterns = [classify(message, None).pattern for message in variants]
    assert len({classify(message, None).fingerprint for message in variants}) == 1, patterns


def test_a_named_counter_is_not_a_host_and_a_named_port_still_is():
    assert "pid:<*>" in classify("[Worker(host:mailhog pid:4021)] Job failed", None).pattern
    assert "attempt:<*>" in classify("send failed (attempt:3)", None).pattern
    # the control: a single-word host with its port (`mail:25`) stays a host
    assert "mail" not in classify("connect to mail:25 failed: Connection refused", None).pattern


def test_a_timestamp_inside_a_time_like_token_is_left_alone():
    # a colon followed by more digits is no log frame's end: `10:22:33:44` is not a clock and a colon
    assert "<ts>" not in classify("queue slot 10:22:33:44 busy", None).pattern
