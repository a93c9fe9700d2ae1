"""Each HTTP email provider under the real `opentelemetry-instrument` launcher.

The app below never imports mailscope. For one provider per run it sends
through the provider's usual client (boto3 for SES against moto_server behind
the fault-injecting proxy, the sendgrid SDK, requests for Mailgun, httpx for
Postmark) and meets success, batch sends with refused entries, and the
provider's own error answers. The launcher loads every installed
instrumentation, upstream botocore/requests/httpx included. Checked in the
exported OTLP JSON files: one `email.send` span per API call with the outcome
the app saw, the upstream client span as its child, the recipients and
duration metrics by provider, no test address anywhere in the exported bytes or
the process output, and a `mailscope report` that counts these sends like any
others (it has no provider-specific code).
"""

import json
import subprocess
import sys
from collections import defaultdict

import pytest

from mailscope import attributes as attr
from mailscope.exporters.otlp_file import read_metric_points, read_spans
from tests.support.launcher import base_env, file_export_env, run_instrumented, write_script
from tests.support.provider_servers import MailgunServer, MotoServer, PostmarkServer, SendGridServer, SESProxy

A = {
    "SENDER": "billing@shop.example.com",
    "STRANGER": "intruder@elsewhere.example.com",
    "TO_1": "kim.lee@clients.example.org",
    "TO_2": "lou@clients.example.org",
    "CC": "audit.copy@archive.example.net",
    "GONE": "bounced.before@gone.example.io",
}

APP = r'''
import json, sys

cfg = json.load(open(sys.argv[1]))
A, url, provider = cfg["addresses"], cfg["url"], cfg["provider"]
outcomes = []


def attempt(label, fn):
    try:
        result = fn()
        outcomes.append([label, result if isinstance(result, int) else "ok"])
    except Exception as exc:
        outcomes.append([label, type(exc).__name__])


if provider == "ses":
    import boto3, botocore.config
    kw = dict(region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
              config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    ses, v2 = boto3.client("ses", **kw), boto3.client("sesv2", **kw)
    ses.verify_email_identity(EmailAddress=A["SENDER"])
    ses.create_template(Template={"TemplateName": "invoice", "SubjectPart": "Invoice", "TextPart": "Hi {{name}}"})
    message = {"Subject": {"Data": "Your invoice"}, "Body": {"Text": {"Data": "Attached."}}}
    raw = (f"From: {A['SENDER']}\r\nTo: {A['TO_1']}\r\nCc: {A['CC']}\r\nX-Campaign-ID: raw-run\r\n"
           "Subject: invoice\r\n\r\nbody\r\n")
    attempt("ok", lambda: ses.send_email(Source=A["SENDER"], Message=message,
                                         Destination={"ToAddresses": [A["TO_1"], A["TO_2"]], "CcAddresses": [A["CC"]]}))
    attempt("raw", lambda: ses.send_raw_email(RawMessage={"Data": raw}))
    attempt("rejected", lambda: ses.send_email(Source=A["STRANGER"], Message=message,
                                               Destination={"ToAddresses": [A["TO_1"]]}))
    attempt("throttled", lambda: ses.send_templated_email(Source=A["SENDER"], Template="invoice", TemplateData="{}",
                                                          Destination={"ToAddresses": [A["TO_2"]]}))
    attempt("v2", lambda: v2.send_email(FromEmailAddress=A["SENDER"], Destination={"ToAddresses": [A["TO_2"]]},
                                        Content={"Simple": message}))
    attempt("bulk", lambda: v2.send_bulk_email(
        FromEmailAddress=A["SENDER"], DefaultContent={"Template": {"TemplateName": "invoice", "TemplateData": "{}"}},
        BulkEmailEntries=[{"Destination": {"ToAddresses": [A["TO_2"]]}}, {"Destination": {"ToAddresses": [A["GONE"]]}}]))

elif provider == "sendgrid":
    import sendgrid
    from sendgrid.helpers.mail import Header, Mail
    sg = sendgrid.SendGridAPIClient(api_key="SG.test-key", host=url)
    def mail(sender, to):
        message = Mail(from_email=sender, to_emails=to, subject="Spring sale", plain_text_content="Hello",
                       is_multiple=True)
        message.add_header(Header("X-Campaign-ID", "sg-run"))
        return message
    attempt("ok", lambda: sg.send(mail(A["SENDER"], [A["TO_1"], A["TO_2"]])).status_code and None)
    attempt("rejected", lambda: sg.send(mail(A["STRANGER"], [A["TO_1"]])))
    attempt("invalid", lambda: sg.send({"personalizations": [{"to": [{"email": "kim.lee@"}, {"email": A["CC"]}]}],
                                        "from": {"email": A["SENDER"]}, "subject": "x",
                                        "content": [{"type": "text/plain", "value": "y"}]}))
    attempt("throttled", lambda: sg.send(mail(A["SENDER"], [A["TO_2"]])))

elif provider == "mailgun":
    import requests
    auth = ("api", "key-test")
    form = {"from": f"Shop <{A['SENDER']}>", "subject": "Spring sale", "text": "Hello", "h:X-Campaign-ID": "mg-run"}
    attempt("ok", lambda: requests.post(f"{url}/v3/mg.example.com/messages", auth=auth,
                                        data={**form, "to": [A["TO_1"], A["TO_2"]], "cc": A["CC"]}).raise_for_status())
    attempt("batch", lambda: requests.post(
        f"{url}/v3/mg.example.com/messages", auth=auth,
        data={**form, "to": [A["TO_1"], A["TO_2"]], "recipient-variables": json.dumps({A["TO_1"]: {}, A["TO_2"]: {}})},
        files=[("attachment", ("terms.pdf", b"%PDF-1.4 " * 2000, "application/pdf"))]).raise_for_status())
    attempt("unknown-domain", lambda: requests.post(f"{url}/v3/other.example.com/messages", auth=auth,
                                                    data={**form, "to": A["TO_1"]}).status_code)
    attempt("bad-key", lambda: requests.post(f"{url}/v3/mg.example.com/messages", auth=("api", "nope"),
                                             data={**form, "to": A["TO_2"]}).status_code)

elif provider == "postmark":
    import httpx
    headers = {"X-Postmark-Server-Token": "pm-server-token", "Accept": "application/json"}
    def message(to, sender=None):
        return {"From": sender or A["SENDER"], "To": to, "Subject": "Spring sale", "TextBody": "Hello",
                "Headers": [{"Name": "X-Campaign-ID", "Value": "pm-run"}]}
    with httpx.Client(headers=headers) as client:
        attempt("ok", lambda: client.post(f"{url}/email", json=message(f"{A['TO_1']}, {A['CC']}")).raise_for_status())
        attempt("batch", lambda: client.post(f"{url}/email/batch", json=[message(A["TO_2"]), message(A["GONE"])])
                .raise_for_status())
        attempt("inactive", lambda: client.post(f"{url}/email", json=message(f"{A['GONE']}, {A['TO_1']}")).status_code)
        attempt("no-signature", lambda: client.post(f"{url}/email", json=message(A["TO_1"], A["STRANGER"])).status_code)

print("OUTCOMES " + json.dumps(outcomes))
'''

# per provider: outcomes in order, the error.type of each failed send (None: ok), the upstream
# client span name, recipients {accepted, refused}, emails (sent, failed, recipients, refused)
CASES = {
    "ses": {
        "outcomes": [["ok", "ok"], ["raw", "ok"], ["rejected", "MessageRejected"], ["throttled", "ClientError"],  # Throttling is not modelled: a plain ClientError
                     ["v2", "ok"], ["bulk", "ok"]],
        "errors": [None, None, "MessageRejected", "Throttling", None, None],
        "categories": {"validation", "rate_limit"},
        "upstream": {"SES.SendEmail", "SES.SendRawEmail", "SES.SendTemplatedEmail", "SESv2.SendEmail",
                     "SESv2.SendBulkEmail"},
        "recipients": {"accepted": 3 + 2 + 1 + 1, "refused": 1},
        "emails": {"sent": 4, "failed": 2, "recipients": 3 + 2 + 1 + 1 + 1 + 2, "refused": 1},
    },
    "sendgrid": {
        "outcomes": [["ok", "ok"], ["rejected", "ForbiddenError"], ["invalid", "BadRequestsError"],
                     ["throttled", "TooManyRequestsError"]],
        "errors": [None, "python_http_client.exceptions.ForbiddenError",
                   "python_http_client.exceptions.BadRequestsError", "python_http_client.exceptions.TooManyRequestsError"],
        "categories": {"validation", "rate_limit"},
        "upstream": set(),  # python_http_client uses urllib, which nothing instruments here
        "recipients": {"accepted": 2},
        "emails": {"sent": 1, "failed": 3, "recipients": 2 + 1 + 2 + 1, "refused": 0},
    },
    "mailgun": {
        "outcomes": [["ok", "ok"], ["batch", "ok"], ["unknown-domain", 404], ["bad-key", 401]],
        "errors": [None, None, "404", "401"],
        "categories": {"validation", "authentication"},  # 404: the sending domain is not set up
        "upstream": {"POST"},
        "recipients": {"accepted": 3 + 2},
        "emails": {"sent": 2, "failed": 2, "recipients": 3 + 2 + 1 + 1, "refused": 0},
    },
    "postmark": {
        "outcomes": [["ok", "ok"], ["batch", "ok"], ["inactive", 422], ["no-signature", 422]],
        "errors": [None, None, "422", "422"],
        "categories": {"recipient", "validation"},
        "upstream": {"POST"},
        "recipients": {"accepted": 2 + 1, "refused": 1 + 1},
        "emails": {"sent": 2, "failed": 2, "recipients": 2 + 2 + 2 + 1, "refused": 1 + 1},
    },
}


@pytest.fixture
def provider_url(request):
    provider = request.param
    if provider == "ses":
        moto = MotoServer().start()
        proxy = SESProxy(moto.url, suppressed=[A["GONE"]]).start()
        proxy.fail("ses", "SendTemplatedEmail", "Throttling", "Maximum sending rate exceeded.")
        yield provider, proxy.url, {}
        proxy.stop()
        moto.stop()
        return
    if provider == "sendgrid":
        server = SendGridServer(verified_senders=[A["SENDER"]], throttle_after=3)
    elif provider == "mailgun":
        server = MailgunServer()
    else:
        server = PostmarkServer(sender_signatures=[A["SENDER"]], inactive=[A["GONE"]])
    with server:
        yield provider, server.url, {"MAILSCOPE_PROVIDER_ENDPOINTS": (
            f"mailgun=127.0.0.1:{server.port}/v3/*/messages,postmark=127.0.0.1:{server.port}/email*")}


def report_json(path):
    result = subprocess.run([sys.executable, "-m", "mailscope", "report", str(path), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("provider_url", list(CASES), indirect=True)
def test_provider_sends_under_the_launcher(tmp_path, provider_url):
    provider, url, env_extra = provider_url
    case = CASES[provider]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"addresses": A, "url": url, "provider": provider}))
    traces, metrics = tmp_path / "traces.jsonl", tmp_path / "metrics.jsonl"
    env = file_export_env(traces, metrics, OTEL_LOGS_EXPORTER="none",
                          MAILSCOPE_HEADER_ATTRIBUTES="X-Campaign-ID=email.campaign.id", **env_extra)
    result = run_instrumented(write_script(tmp_path, APP), env, config)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("OUTCOMES "))
    assert json.loads(line.removeprefix("OUTCOMES ")) == case["outcomes"]  # what the app saw, unchanged

    # --- no address anywhere in what was exported or printed -------------------------------
    exported = {"traces": traces.read_bytes(), "metrics": metrics.read_bytes(),
                "stdout": result.stdout.encode(), "stderr": result.stderr.encode()}
    assert exported["traces"] and exported["metrics"]
    for where, data in exported.items():
        for address in A.values():
            assert address.encode() not in data, (where, address)
            assert address.split("@")[0].encode() + b"@" not in data, (where, address)

    # --- one send span per API call, the upstream client span inside it -----------------------
    spans = read_spans(str(traces))
    sends = sorted((s for s in spans if s["name"] == attr.SPAN_SEND), key=lambda s: s["start_ns"])
    assert len(sends) == len(case["outcomes"])
    for span, error in zip(sends, case["errors"]):
        a = span["attributes"]
        assert span["kind"] == "CLIENT" and a[attr.OPERATION] == attr.OP_SEND and a[attr.PROVIDER] == provider
        assert (span["status_code"] == "ERROR") == (error is not None), (a, span["status_message"])
        assert a.get(attr.ERROR_TYPE) == error
        assert a[attr.RECIPIENTS_COUNT] >= 1 and a[attr.HTTP_RESPONSE_STATUS_CODE] >= 200
        if error is None:
            assert attr.MESSAGE_ID_HASH in a or a.get(attr.MESSAGING_BATCH_MESSAGE_COUNT, 1) > 1
        else:
            assert a[attr.ERROR_CATEGORY] in case["categories"]
    by_id = {s["span_id"]: s for s in spans}
    upstream = [s for s in spans if s["name"] in case["upstream"]]
    send_ids = {s["span_id"] for s in sends}
    if case["upstream"]:
        assert {s["name"] for s in upstream} == case["upstream"]
        assert len(upstream) == len(sends)  # one client span per send call, never a second send span
        assert all(s["parent_span_id"] in send_ids for s in upstream), [(s["name"], by_id.get(s["parent_span_id"])) for s in upstream]
    if provider != "ses":
        assert any(s["attributes"].get("email.campaign.id") for s in sends)

    # --- metrics -----------------------------------------------------------------------------------
    latest = {}
    for point in read_metric_points(str(metrics)):
        latest[(point["name"], tuple(sorted(point["attributes"].items())))] = point
    recipients = {dict(k[1])[attr.LABEL_OUTCOME]: p["value"] for k, p in latest.items()
                  if k[0] == attr.METRIC_RECIPIENTS and dict(k[1])[attr.PROVIDER] == provider}
    assert recipients == case["recipients"]
    durations = defaultdict(int)
    for (name, labels), point in latest.items():
        labels = dict(labels)
        if name == attr.METRIC_OPERATION_DURATION and labels.get(attr.PROVIDER) == provider:
            durations[(labels[attr.OPERATION], labels[attr.LABEL_OUTCOME])] += point["count"]
    errors = sum(1 for e in case["errors"] if e)
    assert dict(durations) == {(attr.OP_SEND, attr.OUTCOME_OK): len(sends) - errors,
                               (attr.OP_SEND, attr.OUTCOME_ERROR): errors}

    # --- the report counts them like any send ------------------------------------------------------
    report = report_json(traces)
    emails = report["summary"]["emails"]
    assert {k: emails[k] for k in ("sent", "failed", "recipients", "refused")} == case["emails"]
    assert emails["send_spans"] == len(sends)
    assert report["smtp"]["sends"] == 0  # not SMTP: no connection-reuse advice
    send_op = next(o for o in report["operations"] if o["key"] == attr.OP_SEND)
    assert send_op["count"] == len(sends) and send_op["errors"] == errors
    categories = {p["category"] for p in report["errors"]["patterns"] if attr.SPAN_SEND in p["span_names"]}
    assert categories == case["categories"]


@pytest.mark.parametrize("provider_url", ["mailgun"], indirect=True)
def test_disabling_the_instrumentor_the_standard_way(tmp_path, provider_url):
    provider, url, env_extra = provider_url
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"addresses": A, "url": url, "provider": provider}))
    traces = tmp_path / "traces.jsonl"
    env = base_env(OTEL_TRACES_EXPORTER="otlp_json_file", MAILSCOPE_TRACES_FILE=traces, OTEL_METRICS_EXPORTER="none",
                   OTEL_LOGS_EXPORTER="none", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="mailscope_providers", **env_extra)
    result = run_instrumented(write_script(tmp_path, APP), env, config)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("OUTCOMES "))
    assert json.loads(line.removeprefix("OUTCOMES ")) == CASES[provider]["outcomes"]
    names = [s["name"] for s in read_spans(str(traces))]
    assert names.count("POST") == 4 and attr.SPAN_SEND not in names  # requests is still traced upstream
