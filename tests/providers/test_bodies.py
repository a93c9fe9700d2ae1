"""The provider body readers, cross-checked against independent parsers.

- `split_addresses` against `email.utils.getaddresses` (its fast path must agree);
- the Mailgun form reader against the standard library's multipart and
  URL-encoded parsers, on bodies encoded by requests and by httpx themselves;
- SES and SendGrid request descriptions against the recipient lists generated.
"""

import json

import httpx
import requests
from email.utils import getaddresses
from hypothesis import given, settings
from hypothesis import strategies as st

from mailscope.instrumentation.providers import mailgun as providers_mailgun
from mailscope.instrumentation.providers import sendgrid as providers_sendgrid
from mailscope.instrumentation.providers import ses as providers_ses
from mailscope.instrumentation.providers.common import split_addresses
from tests.support.provider_servers import parse_form

local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=12).filter(
    lambda s: s[0] not in ".+-" and s[-1] != "." and ".." not in s)
domain = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8),
                  min_size=2, max_size=3).map(".".join)
address = st.builds(lambda l, d: f"{l}@{d}", local, domain)
display = st.text(alphabet="ABCDEFGHIJ abcdefghij", min_size=1, max_size=10).map(str.strip).filter(bool)
entry = st.one_of(address, st.builds(lambda n, a: f"{n} <{a}>", display, address),
                  st.builds(lambda n, a: f'"{n}, Jr" <{a}>', display, address))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(entry, min_size=1, max_size=4).map(", ".join), min_size=1, max_size=3))
def test_split_addresses_agrees_with_the_email_package(values):
    assert split_addresses(values) == [a for _, a in getaddresses(values) if a]


field_value = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"),
                      max_size=40)


@settings(max_examples=100, deadline=None)
@given(to=st.lists(address, min_size=1, max_size=4), cc=st.lists(address, max_size=2),
       header=field_value, batch=st.booleans(), attachment=st.binary(max_size=3000), via=st.sampled_from(["requests", "httpx"]),
       multipart=st.booleans())
def test_mailgun_form_reader_agrees_with_the_standard_library(to, cc, header, batch, attachment, via, multipart):
    data = {"from": "shop@mg.example.com", "to": to, "subject": "s", "text": "t", "h:X-Campaign-ID": header}
    if cc:
        data["cc"] = ", ".join(cc)
    if batch:
        data["recipient-variables"] = json.dumps({a: {"i": i} for i, a in enumerate(to)})
    files = [("attachment", ("a.bin", attachment, "application/octet-stream"))] if multipart else None
    url = "http://127.0.0.1:9/v3/mg.example.com/messages"
    if via == "requests":
        prepared = requests.Request("POST", url, data=data, files=files).prepare()
        body, content_type = prepared.body, prepared.headers["Content-Type"]
    else:
        built = httpx.Request("POST", url, data=data, files=files)
        body, content_type = built.read(), built.headers["content-type"]
    body = body.encode() if isinstance(body, str) else body
    reference = parse_form(body, content_type)
    expected_to = [a for name, v in reference if name == "to" for a in [v.decode() if isinstance(v, bytes) else v]]
    expected_cc = [v.decode() if isinstance(v, bytes) else v for name, v in reference if name == "cc"]
    described = providers_mailgun.describe_request(body, content_type)
    assert described.recipients == [a for _, a in getaddresses(expected_to)] + [a for _, a in getaddresses(expected_cc)]
    assert described.batch == (len(to) if batch else None)
    (mapped,) = [v for name, v in reference if name == "h:X-Campaign-ID"]
    assert described.headers == {"x-campaign-id": mapped.decode() if isinstance(mapped, bytes) else mapped}


def test_mailgun_reader_never_copies_a_large_attachment_and_reads_the_mime_part():
    mime = b"Message-ID: <m.1@mg.example.com>\r\nX-Campaign-ID: c7\r\nSubject: x\r\n\r\n" + b"y" * 5000
    prepared = requests.Request("POST", "http://h/v3/d/messages.mime", data={"to": "a@b.example.org"}, files=[
        ("message", ("m.mime", mime, "message/rfc822")),
        ("attachment", ("big.bin", b"\x00" * (providers_mailgun.MAX_FIELD_BYTES + 1), "application/octet-stream")),
    ]).prepare()
    wanted = []
    fields = providers_mailgun.multipart_fields(
        prepared.body, prepared.headers["Content-Type"].split("boundary=")[1].encode(),
        lambda name, size: wanted.append((name, size)) or providers_mailgun._wanted(name, size))
    assert [name for name, _ in fields] == ["to", "message"]
    assert ("attachment", providers_mailgun.MAX_FIELD_BYTES + 1) in wanted
    described = providers_mailgun.describe_request(prepared.body, prepared.headers["Content-Type"])
    assert described.size == len(mime) and described.headers["message-id"] == "<m.1@mg.example.com>"


def test_ses_requests_count_every_destination_list():
    destination = {"ToAddresses": ["a@x.example.org", "b@x.example.org"], "CcAddresses": ["c@y.example.net"],
                   "BccAddresses": ["d@z.example.com"]}
    request = providers_ses.describe_request("ses", "SendEmail", {"Destination": destination})
    assert request.recipients == ["a@x.example.org", "b@x.example.org", "c@y.example.net", "d@z.example.com"]
    bulk = providers_ses.describe_request("ses", "SendBulkTemplatedEmail", {
        "Destinations": [{"Destination": destination}, {"Destination": {"ToAddresses": ["e@x.example.org"]}}]})
    assert len(bulk.recipients) == 5 and bulk.batch == 2
    raw = b"To: A <a@x.example.org>, b@x.example.org\r\nBcc: c@y.example.net\r\nSubject: s\r\n\r\nTo: not@a.header\r\n"
    request = providers_ses.describe_request("ses", "SendRawEmail", {"RawMessage": {"Data": raw}})
    assert request.recipients == ["a@x.example.org", "b@x.example.org", "c@y.example.net"] and request.size == len(raw)
    assert providers_ses.describe_request("ses", "SendEmail", "not a dict").recipients is None


def test_ses_bulk_results_align_with_their_entries():
    params = {"BulkEmailEntries": [{"Destination": {"ToAddresses": ["a@x.example.org"]}},
                                   {"Destination": {"ToAddresses": ["b@y.example.net", "c@y.example.net"]}}]}
    result = {"BulkEmailEntryResults": [{"Status": "SUCCESS", "MessageId": "m-1"},
                                        {"Status": "ACCOUNT_THROTTLED", "Error": "Maximum sending rate exceeded."}]}
    outcome = providers_ses.describe_result("SendBulkEmail", params, result)
    assert outcome.message_ids == ["m-1"] and outcome.failure is None
    assert [a for a, _, _ in outcome.refusals] == ["b@y.example.net", "c@y.example.net"]
    result["BulkEmailEntryResults"][0] = {"Status": "ACCOUNT_THROTTLED", "Error": "x"}
    assert providers_ses.describe_result("SendBulkEmail", params, result).failure == ("ACCOUNT_THROTTLED", "x")


def test_sendgrid_request_reads_every_personalization():
    body = {"personalizations": [{"to": [{"email": "a@x.example.org", "name": "A"}], "cc": [{"email": "b@y.example.net"}]},
                                 {"to": [{"email": "c@x.example.org"}], "bcc": [{"email": "d@z.example.com"}]}],
            "headers": {"X-Campaign-ID": "c1"}}
    request = providers_sendgrid.describe_request(json.dumps(body).encode())
    assert request.recipients == ["a@x.example.org", "b@y.example.net", "c@x.example.org", "d@z.example.com"]
    assert request.batch == 2 and request.headers == {"x-campaign-id": "c1"}
