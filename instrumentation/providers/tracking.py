"""Delivery tracking at send time (`MAILSCOPE_DELIVERY_TRACKING=on`): the send span's context
travels to the provider inside the per-message metadata its event webhooks echo back.

What is added is one key, `mailscope`, whose value is `mailscope.delivery.tracking`'s
`<traceparent>_<send time ms>`:

| provider | where (API sends) |
|---|---|
| SendGrid | `custom_args` of the Mail Send body (the `sendgrid` SDK, requests, httpx) |
| Mailgun | the `v:mailscope` form field |
| Postmark | `Metadata` of each message |
| Amazon SES | a message tag (`Tags`, `DefaultTags`, `EmailTags`, `DefaultEmailTags`) |

Rules: with tracking off (the default) nothing here runs, so what is sent is byte for byte
what the app built. With it on, the app's own values are copied, never changed in place, and a
message that already has the key keeps the app's value (as does a Postmark message that has
used its 10 metadata fields). A body mailscope cannot rewrite safely (a multipart body of
httpx, a stream, JSON that is not an object) is sent as it is. Every function returns None
when it adds nothing and never raises (callers guard it too).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from mailscope.config import settings
from mailscope.delivery.tracking import KEY, value_for

MAILGUN_FIELD = f"v:{KEY}"
POSTMARK_METADATA_MAX = 10  # Postmark's limit of metadata fields per message


def enabled() -> bool:
    return settings().delivery_tracking == "on"


def value(send) -> str | None:
    """The tracking value of a send in progress (`providers.common.Send`)."""
    return value_for(send.span) if send is not None else None


# --- SendGrid: custom_args ---------------------------------------------------------------------
def _json_body(data, of_document, tracking: str):
    """A JSON body (bytes or str) rewritten by `of_document`, in the same type, or None."""
    document = of_document(json.loads(data), tracking)
    if document is None:
        return None
    out = json.dumps(document, ensure_ascii=False)
    return out.encode("utf-8") if isinstance(data, (bytes, bytearray)) else out


def sendgrid_body(data, tracking: str):
    """A Mail Send body (bytes or str of JSON) with custom_args.mailscope, or None."""
    return _json_body(data, sendgrid_document, tracking)


def sendgrid_document(document, tracking: str):
    """A Mail Send document with custom_args.mailscope, or None."""
    if not isinstance(document, dict):
        return None
    custom = document.get("custom_args")
    if custom is not None and not isinstance(custom, dict):
        return None
    personal = [p.get("custom_args") for p in document.get("personalizations") or () if isinstance(p, dict)]
    if (custom and KEY in custom) or any(isinstance(c, dict) and KEY in c for c in personal):
        return None
    return {**document, "custom_args": {**(custom or {}), KEY: tracking}}


# --- Postmark: Metadata --------------------------------------------------------------------------
def _postmark_message(message, tracking):
    if not isinstance(message, dict):
        return message, False
    metadata = message.get("Metadata")
    if metadata is not None and (not isinstance(metadata, dict) or KEY in metadata
                                 or len(metadata) >= POSTMARK_METADATA_MAX):
        return message, False
    return {**message, "Metadata": {**(metadata or {}), KEY: tracking}}, True


def postmark_document(document, tracking: str):
    """A Postmark request document (one message, a batch list, or {"Messages": [...]}) with
    Metadata.mailscope on each message, or None."""
    if isinstance(document, list):
        pairs = [_postmark_message(m, tracking) for m in document]
        return [m for m, _ in pairs] if any(added for _, added in pairs) else None
    if isinstance(document, dict) and isinstance(document.get("Messages"), list):
        inner = postmark_document(document["Messages"], tracking)
        return {**document, "Messages": inner} if inner is not None else None
    message, added = _postmark_message(document, tracking)
    return message if added else None


def postmark_body(data, tracking: str):
    return _json_body(data, postmark_document, tracking)


# --- Mailgun: v:mailscope ------------------------------------------------------------------------
def mailgun_data(data, tracking: str, has_files: bool = False):
    """Form data (a dict, a list of pairs, or an encoded string) with v:mailscope, or None."""
    if data is None:
        return {MAILGUN_FIELD: tracking} if has_files else None
    if isinstance(data, dict):
        return None if MAILGUN_FIELD in data else {**data, MAILGUN_FIELD: tracking}
    if isinstance(data, (list, tuple)):
        if any(isinstance(p, (list, tuple)) and len(p) == 2 and p[0] == MAILGUN_FIELD for p in data):
            return None
        return list(data) + [(MAILGUN_FIELD, tracking)]
    if isinstance(data, (bytes, bytearray, str)):
        return mailgun_urlencoded(data, tracking)
    return None


def mailgun_urlencoded(data, tracking: str):
    text = bytes(data).decode("latin-1") if isinstance(data, (bytes, bytearray)) else data
    if "v%3Amailscope=" in text or "v:mailscope=" in text:
        return None
    extra = ("&" if text else "") + quote(MAILGUN_FIELD, safe="") + "=" + quote(tracking, safe="")
    return (text + extra).encode("latin-1") if isinstance(data, (bytes, bytearray)) else text + extra


# --- requests: Session.request(method, url, params, data, headers, cookies, files, auth, timeout,
#     allow_redirects, proxies, hooks, stream, verify, cert, json) -------------------------------------
_DATA_INDEX, _FILES_INDEX, _JSON_INDEX = 3, 6, 15


def _argument(args, kwargs, index, name):
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _with_argument(args, kwargs, index, name, value):
    if len(args) > index:
        args = args[:index] + (value,) + args[index + 1:]
    else:
        kwargs = {**kwargs, name: value}
    return args, kwargs


def requests_call(provider, send, args, kwargs):
    """The Session.request arguments with the tracking value added (the originals when nothing is)."""
    tracking = value(send)
    if tracking is None:
        return args, kwargs
    args = tuple(args)
    if provider == "mailgun":
        data = _argument(args, kwargs, _DATA_INDEX, "data")
        new = mailgun_data(data, tracking, has_files=bool(_argument(args, kwargs, _FILES_INDEX, "files")))
        return _with_argument(args, kwargs, _DATA_INDEX, "data", new) if new is not None else (args, kwargs)
    json_codec = {"postmark": (postmark_document, postmark_body),
                  "sendgrid": (sendgrid_document, sendgrid_body)}.get(provider)
    if json_codec is not None:
        of_document, of_body = json_codec
        document = _argument(args, kwargs, _JSON_INDEX, "json")
        if document is not None:
            new = of_document(document, tracking)
            return _with_argument(args, kwargs, _JSON_INDEX, "json", new) if new is not None else (args, kwargs)
        data = _argument(args, kwargs, _DATA_INDEX, "data")
        if isinstance(data, (bytes, bytearray, str)):
            new = of_body(data, tracking)
            return _with_argument(args, kwargs, _DATA_INDEX, "data", new) if new is not None else (args, kwargs)
    return args, kwargs


# --- httpx: Client.send(request, ...): a new Request with the rewritten body ------------------------
def httpx_call(provider, send, args, kwargs):
    tracking = value(send)
    request = args[0] if args else kwargs.get("request")
    if tracking is None or request is None:
        return args, kwargs
    try:
        body = request.content  # raises for a stream: left alone
    except Exception:
        return args, kwargs
    content_type = (request.headers.get("content-type") or "").lower()
    new = None
    if provider in ("postmark", "sendgrid") and "json" in content_type and body:
        new = (postmark_body if provider == "postmark" else sendgrid_body)(body, tracking)
    elif provider == "mailgun" and content_type.startswith("application/x-www-form-urlencoded"):
        new = mailgun_urlencoded(body, tracking)
    if new is None:
        return args, kwargs
    import httpx

    headers = httpx.Headers(request.headers)
    headers.pop("content-length", None)
    rebuilt = httpx.Request(request.method, request.url, headers=headers, content=new,
                            extensions=request.extensions)
    if args:
        return (rebuilt,) + tuple(args[1:]), kwargs
    return args, {**kwargs, "request": rebuilt}


# --- Amazon SES: message tags ------------------------------------------------------------------------
SES_TAG_PARAMS = {
    ("ses", "SendEmail"): "Tags", ("ses", "SendRawEmail"): "Tags", ("ses", "SendTemplatedEmail"): "Tags",
    ("ses", "SendBulkTemplatedEmail"): "DefaultTags",
    ("sesv2", "SendEmail"): "EmailTags", ("sesv2", "SendBulkEmail"): "DefaultEmailTags",
}


def ses_params(service, operation, params, send):
    """The call's parameters with a `mailscope` message tag, or None."""
    name = SES_TAG_PARAMS.get((service, operation))
    tracking = value(send)
    if name is None or tracking is None or not isinstance(params, dict):
        return None
    tags = params.get(name)
    if tags is not None and not isinstance(tags, (list, tuple)):
        return None
    if any(isinstance(t, dict) and t.get("Name") == KEY for t in tags or ()):
        return None
    return {**params, name: list(tags or ()) + [{"Name": KEY, "Value": tracking}]}


# --- SendGrid SDK: python_http_client's urllib Request (its own object, not the app's) ---------------
def sendgrid_request(request, send) -> None:
    tracking = value(send)
    data = getattr(request, "data", None)
    if tracking is None or not isinstance(data, (bytes, bytearray, str)):
        return
    new = sendgrid_body(data, tracking)
    if new is not None:
        request.data = new  # urllib drops a stale Content-Length header itself


def guarded(function, *args, fallback=None):
    """`function(*args)`, or `fallback` when it fails (the app's send goes on unchanged)."""
    try:
        return function(*args)
    except Exception:
        from mailscope._safety import internal_error

        internal_error("delivery tracking")
        return fallback


# --- SMTP relays: a header the relay reads ----------------------------------------------------------
# the providers' documented SMTP relay hosts (host glob, provider)
RELAY_HOSTS = [
    ("smtp.sendgrid.net", "sendgrid"),
    ("smtp.mailgun.org", "mailgun"), ("smtp.eu.mailgun.org", "mailgun"),
    ("smtp.postmarkapp.com", "postmark"), ("smtp-broadcasts.postmarkapp.com", "postmark"),
    ("email-smtp.*.amazonaws.com", "ses"),
]


def relay_provider(host, port=None) -> str | None:
    """The provider whose relay `host` (and `port`) is: MAILSCOPE_DELIVERY_RELAYS first, then the
    providers' own relay hosts."""
    import fnmatch

    if not isinstance(host, str) or not host:
        return None
    host = host.lower().rstrip(".")
    for glob, wanted_port, provider in settings().delivery_relays:
        if fnmatch.fnmatchcase(host, glob) and (wanted_port is None or wanted_port == port):
            return provider
    return next((provider for glob, provider in RELAY_HOSTS if fnmatch.fnmatchcase(host, glob)), None)


def _peer_port(instance):
    try:
        return instance.sock.getpeername()[1]
    except Exception:
        return None


def relay_header(provider: str, tracking: str) -> tuple[str, str] | None:
    """(name, value) of the header that carries the tracking value through `provider`'s relay."""
    if provider == "sendgrid":
        return "X-SMTPAPI", json.dumps({"unique_args": {KEY: tracking}})
    if provider == "mailgun":
        return "X-Mailgun-Variables", json.dumps({KEY: tracking})
    if provider == "postmark":
        return f"X-PM-Metadata-{KEY}", tracking
    if provider == "ses":
        return "X-SES-MESSAGE-TAGS", f"{KEY}={tracking}"
    return None


def with_relay_header(message, name: str, value: str):
    """`message` (bytes or str, as handed to DATA) with `name: value` first, or None when its header
    section already has that header (the app's own is never overwritten or doubled)."""
    raw = message if isinstance(message, (bytes, bytearray)) else str(message).encode("utf-8", "surrogateescape")
    head_end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    lowered = b"\n" + raw[:head_end].lower()
    if b"\n" + name.lower().encode("ascii") + b":" in lowered:
        return None
    first_line_end = raw.find(b"\n")
    eol = b"\r\n" if first_line_end > 0 and raw[first_line_end - 1:first_line_end] == b"\r" else b"\n"
    if first_line_end < 0:
        eol = b"\r\n"
    line = f"{name}: {value}".encode("ascii") + eol
    if isinstance(message, (bytes, bytearray)):
        return line + bytes(message)
    return line.decode("ascii") + message


def relay_data(host, port, transaction, args, kwargs, name_of_message: str):
    """A client's `data(message)` arguments with the relay's tracking header, when `host` is a
    provider relay and a send span is in progress (the originals otherwise)."""
    provider = relay_provider(host, port)
    tracking = value_for(transaction.span) if provider is not None and transaction is not None else None
    if tracking is None:
        return args, kwargs
    name, header_value = relay_header(provider, tracking)
    message = args[0] if args else kwargs.get(name_of_message)
    new = with_relay_header(message, name, header_value) if message is not None else None
    if new is None:
        return args, kwargs
    return ((new,) + tuple(args[1:]), kwargs) if args else (args, {**kwargs, name_of_message: new})


def smtplib_data(instance, transaction, args, kwargs):
    """smtplib's `data(msg)`: the host it connected to, the peer's port."""
    return relay_data(getattr(instance, "_host", None), _peer_port(instance), transaction, args, kwargs, "msg")


def aiosmtplib_data(instance, transaction, args, kwargs):
    """aiosmtplib's `data(message, timeout=...)`."""
    port = getattr(instance, "port", None)
    return relay_data(getattr(instance, "hostname", None), port if isinstance(port, int) else None, transaction,
                      args, kwargs, "message")
