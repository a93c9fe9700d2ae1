"""Classes found on the fifth wave's tuning part (issue 18 §1, docs/errors-quality.md, "Fifth wave").

One case per class, written here (not rows of the corpus). Each fails on the code before the change.
"""

import pytest

from mailscope.processors.error_patterns import mask
from mailscope.processors.errors import classify

PF = "Mar  3 04:05:06 mx1 postfix/smtp[4242]: "

CLASSES = [
    # authentication types and mechanisms, servers without AUTH
    ("504 5.7.4 Unrecognized authentication type", "authentication"),
    ("The SMTP server does not support authentication.", "authentication"),
    ("AUTH=server, available mechanisms do not fulfill requirements", "authentication"),
    # a mail loop is routing trouble, whatever the code
    ("554 5.6.0 Message exceeded 30 hops, this may indicate a mail loop", "infrastructure"),
    # DANE / TLSA failures are certificate trouble
    ("451 4.7.323 tlsa-invalid: The domain failed DANE validation", "infrastructure"),
    # the mail system's own files, sockets and crashes
    (PF + "warning: SASL: Connect to private/auth failed: No such file or directory", "infrastructure"),
    ("maildir delivery failed: create maildir file /var/mail/ops/tmp/1712.M1: Permission denied", "infrastructure"),
    (PF + "panic: myfree: corrupt or unallocated memory block", "infrastructure"),
    (PF + "warning: database /etc/postfix/transport.db is older than source file /etc/postfix/transport",
     "infrastructure"),
    ("sieve: Execution of script /home/ops/.dovecot.sieve failed, but implicit keep was successful",
     "infrastructure"),
    # limits on threads and sessions are rate limits, over x.3.2
    ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", "rate_limit"),
    # a From the message must carry
    ("550 Blank From: addresses are not allowed.", "content"),
    # Postfix's sender restrictions: login, access list, verification
    ("553 5.7.1 <a@example.org>: Sender address rejected: not logged in", "authentication"),
    ("554 5.7.1 <a@example.org>: Sender address rejected: Access denied", "reputation"),
    ("550 5.1.0 <a@example.org>: Sender address rejected: User unknown in local recipient table", "validation"),
    # a remote that cannot start TLS because of its own problem
    ("TLS is required, but host mx.example.org[192.0.2.1] refused to start TLS: 454 4.7.0 TLS not available due to "
     "local problem", "infrastructure"),
    # servers without TLS, a port used with the wrong TLS mode
    ("Server does not support secure connections.", "validation"),
    ("The SMTP server does not support the STARTTLS extension.", "validation"),
    ("When connecting to an SMTP service, port 587 is typically reserved for plain-text connections.", "validation"),
    # the sender's own identity
    ("451 Message temporarily deferred due to unresolvable RFC.5321 from domain", "validation"),
    ("550 5.7.0 From address is not one of your addresses", "validation"),
    ("Your FROM address ( a@example.org ) must match your authenticated email user", "validation"),
    ("A from address must be specified.", "validation"),
    # MX records that point nowhere
    ("all relevant MX records point to non-existent hosts", "recipient"),
    # more broken services
    ("NOQUEUE: reject: CONNECT from [192.0.2.1]:4242: all server ports busy", "infrastructure"),
    ("dial tcp: lookup smtp.example.org on 10.0.0.2:53: server misbehaving", "infrastructure"),
    ("Could not instantiate mail function.", "infrastructure"),
    ("short response: 22", "infrastructure"),
    # postscreen's verdict on a client that talks before its turn
    ("PREGREET 11 after 0.07 from [192.0.2.1]:4242: EHLO bot", "reputation"),
    # .NET's status description gives way to the server's reply
    ("Exceeded storage allocation. The server response was: 5.3.4 Message size exceeds fixed maximum message size",
     "content"),
]


@pytest.mark.parametrize("message,category", CLASSES)
def test_fifth_wave_classes(message, category):
    assert classify(message).category == category


def test_a_failed_authentication_is_final_even_in_a_deferral():
    message = "== a@example.org R=smarthost T=remote_smtp defer (-42): authentication required but authentication " \
              "attempt(s) failed"
    assert classify(message).retryable is False


@pytest.mark.parametrize("first,second", [
    # a word after `lookup` that is no host
    (PF + 'warning: hash:/etc/postfix/virtual lookup error for "a@example.org"',
     PF + 'warning: hash:/etc/postfix/virtual lookup error for "b.c@example.net"'),
    # what follows EHLO is a host, whatever it is called
    ("PREGREET 11 after 0.07 from [192.0.2.1]:4242: EHLO bot", "PREGREET 9 after 0.2 from [192.0.2.7]:5151: EHLO mx.example.org"),
    # a host name that ends a sentence
    ("Host: mail. is not in the cert's altnames: DNS:smtp.example.org", "Host: relay.example.net. is not in the cert's altnames: DNS:smtp.example.org"),
    # nodemailer's resolver errors name the host
    ("Error: queryA ETIMEOUT mailhog", "Error: queryA ETIMEOUT smtp.example.org"),
    # Java's certificate name check
    ("No subject alternative DNS name matching mail found.", "No subject alternative DNS name matching smtp.example.org found."),
    # a header a filter logged is a value
    (PF + "4F3A21C0D3B: reject: header Subject: Cheap meds now from mx.example.org[192.0.2.1]; from=<a@example.org>",
     PF + "7C1B0A99E2F: reject: header Subject: invoice from mail.example.net[192.0.2.9]; from=<b@example.org>"),
    # what PHPMailer could not read as an address
    ("Invalid address: (to): deploybot", "Invalid address: (to): ops-user"),
])
def test_fifth_wave_values_mask_alike(first, second):
    assert mask(first) == mask(second)


def test_words_after_helo_that_are_no_host_stay():
    assert "command" in mask("501 5.5.2 <ops>: Helo command rejected: need fully-qualified hostname")
    assert "error" in mask(PF + "warning: hash:/etc/postfix/virtual lookup error for \"a@example.org\"")


@pytest.mark.parametrize("message,category", [
    ("535 5.7.0 Too many bad auth attempts, go away", "authentication"),  # wrong credentials, tried often
    ("454 4.7.0 Too many login attempts, please try again later.", "rate_limit"),  # just too often: stays
    ("Invalid address: (cc): ops-user", "validation"),  # the library's own syntax check
])
def test_fifth_wave_words_that_decide(message, category):
    assert classify(message).category == category
