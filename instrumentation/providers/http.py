"""HTTP email APIs over requests or httpx: send endpoints become `email.send` spans.

A POST whose URL matches `MAILSCOPE_PROVIDER_ENDPOINTS` (host and path globs;
the send endpoints of Mailgun, Postmark, SendGrid, Brevo, Mailjet, Resend,
SparkPost and Mandrill are built in) is traced as a send of that provider; the
body shapes are read by the provider's module (`CODECS`). This is what
django-anymail and hand-written clients go through. A POST made while a
mailscope send span is current (the `sendgrid` package's own span, a
config-named send operation) gets no second span.

Where the span comes from, so that the upstream HTTP span stays its child:
- requests: `Session.request` (what `requests.post` and every Session method go
  through). opentelemetry-instrumentation-requests patches `Session.send`, one
  level below, so its span is a child whichever instrumentor was loaded first.
  The body is read after the call from the PreparedRequest that was sent
  (`response.request`, or `exc.request` when requests raised), so every way an
  app builds the body (json=, data= dict or string, files=) reads the same.
  Calls made with `Session.send(prepared)` directly are not traced.
- httpx: `Client.send` and `AsyncClient.send` (what every request method goes
  through); opentelemetry-instrumentation-httpx wraps the transports below them.

The response body is read only when the client has read it already (requests
without `stream=True`, httpx without `stream=True`): mailscope never consumes a
stream the app has not read. An error status (>= 400) marks the span ERROR with
`error.type` = the status code and the provider's error text as the status
description, though the HTTP client raises nothing.
"""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import urlsplit

import wrapt

from mailscope._safety import internal_error
from mailscope.config import settings
from opentelemetry import trace

from mailscope import attributes as attr
from mailscope.instrumentation.providers import brevo, mailjet, mandrill, resend, sendgrid_http, sparkpost
from mailscope.instrumentation.providers import mailgun as providers_mailgun
from mailscope.instrumentation.providers import postmark as providers_postmark
from mailscope.instrumentation.common import wrapper_layers
from mailscope.instrumentation.providers import tracking as delivery_tracking
from mailscope.instrumentation.providers.common import DEFAULT_PORTS, Outcome

# provider name -> the module reading its documented request and answer shapes
CODECS = {codec.PROVIDER: codec for codec in (providers_mailgun, providers_postmark, sendgrid_http, brevo, mailjet,
                                               resend, sparkpost, mandrill)}


def inside_send() -> bool:
    """A mailscope `email.send` span is current: the provider's SDK (or the app's own send
    operation) already covers this HTTP call, so it gets no second send span."""
    try:
        attributes = getattr(trace.get_current_span(), "attributes", None)
        return attributes is not None and attributes.get(attr.OPERATION) == attr.OP_SEND
    except Exception:
        return False


class Endpoints:
    """First matching (provider, host glob, path glob) wins."""

    def __init__(self, entries):
        self.entries = tuple(
            (provider, re.compile(fnmatch.translate(host)), ":" in host, re.compile(fnmatch.translate(path)))
            for provider, host, path in entries
            if provider in CODECS
        )

    def match(self, scheme, host, port, path) -> str | None:
        if not host:
            return None
        host = host.lower()
        with_port = f"{host}:{port or DEFAULT_PORTS.get((scheme or '').lower(), '')}"
        for provider, host_rx, has_port, path_rx in self.entries:
            if host_rx.match(with_port if has_port else host) and path_rx.match(path or "/"):
                return provider
        return None


_endpoints_cache: dict = {}


def endpoints() -> Endpoints:
    entries = settings().provider_endpoints
    found = _endpoints_cache.get(entries)
    if found is None:
        found = Endpoints(entries)
        _endpoints_cache.clear()  # only the current settings are kept
        _endpoints_cache[entries] = found
    return found


def match_url(method, url) -> tuple | None:
    """(provider, (host, port)) for a POST to a configured send endpoint, else None."""
    if not isinstance(method, str) or method.upper() != "POST" or not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    provider = endpoints().match(parts.scheme, host, port, parts.path)
    if provider is None or inside_send():
        return None
    return provider, (host, port or DEFAULT_PORTS.get(parts.scheme.lower()))


def httpx_body(request):
    """The body of an httpx Request without reading any stream: its bytes when httpx holds them,
    else for a multipart body not yet rendered, its fields as (name, value) pairs (files only
    when given as bytes or text; a file object is never read)."""
    try:
        return request.content  # raises RequestNotRead when the body is a stream
    except Exception:
        pass
    fields = getattr(getattr(request, "stream", None), "fields", None)
    if not isinstance(fields, list):
        return None
    pairs = []
    for item in fields:
        name = getattr(item, "name", None)
        value = getattr(item, "value", None) if hasattr(item, "value") else getattr(item, "file", None)
        if isinstance(name, str) and isinstance(value, (str, bytes)):
            pairs.append((name, value))
    return pairs


def _status_outcome(status) -> Outcome:
    return Outcome(status_code=status if isinstance(status, int) else None)


def _header(headers, name):
    try:
        return headers.get(name) if headers is not None else None
    except Exception:
        return None


class HTTPProbe:
    """Installs the requests and httpx wrappers when those modules are imported."""

    def __init__(self, telemetry):
        self.telemetry = telemetry
        self.active = False
        self.patches: dict = {}

    def enable(self) -> None:
        self.active = True
        wrapt.register_post_import_hook(self._on_requests, "requests.sessions")
        wrapt.register_post_import_hook(self._on_httpx, "httpx")

    def _on_requests(self, module) -> None:
        try:
            if self.active and "requests" not in self.patches:
                self.patches["requests"] = [wrapper_layers.apply(module.Session, "request", self._requests_request)]
        except Exception:
            internal_error("requests instrumentation install")

    def _on_httpx(self, module) -> None:
        try:
            if self.active and "httpx" not in self.patches:
                self.patches["httpx"] = [
                    wrapper_layers.apply(module.Client, "send", self._httpx_send),
                    wrapper_layers.apply(module.AsyncClient, "send", self._httpx_async_send),
                ]
        except Exception:
            internal_error("httpx instrumentation install")
            for patch in self.patches.pop("httpx", ()):
                wrapper_layers.remove(patch)

    def disable(self) -> None:
        self.active = False
        patches, self.patches = self.patches, {}
        for group in patches.values():
            for patch in reversed(group):
                try:
                    wrapper_layers.remove(patch)
                except Exception:
                    internal_error("http provider instrumentation removal")

    # --- shared ----------------------------------------------------------------------
    def _describe(self, send, provider, body, content_type):
        codec = CODECS[provider]
        try:
            request = codec.describe_request(body, content_type)
        except Exception:
            internal_error(f"{provider} request")
            return None
        self.telemetry.describe(send, request)
        return request

    def _finish(self, send, provider, status, body, request) -> None:
        outcome = None
        try:
            outcome = CODECS[provider].describe_result(status, body, request)
        except Exception:
            internal_error(f"{provider} response")
        self.telemetry.end_ok(send, outcome)

    # --- requests: Session.request(method, url, params, data, headers, cookies, files, ...)
    def _requests_request(self, wrapped, instance, args, kwargs):
        if not self.active:
            return wrapped(*args, **kwargs)
        try:
            method = args[0] if args else kwargs.get("method")
            url = args[1] if len(args) > 1 else kwargs.get("url")
            matched = match_url(method, url)
        except Exception:
            internal_error("requests match")
            matched = None
        if matched is None:
            return wrapped(*args, **kwargs)
        provider, server = matched
        send = self.telemetry.start(provider, server)
        if send is not None and delivery_tracking.enabled():
            args, kwargs = delivery_tracking.guarded(delivery_tracking.requests_call, provider, send,
                                                     args, kwargs, fallback=(args, kwargs))
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            status = None
            try:
                prepared = getattr(exc, "request", None)  # requests' exceptions carry what was sent
                if send is not None and prepared is not None:
                    self._describe(send, provider, getattr(prepared, "body", None),
                                   _header(getattr(prepared, "headers", None), "Content-Type"))
                status = getattr(getattr(exc, "response", None), "status_code", None)
            except Exception:
                internal_error(f"{provider} requests error")
            self.telemetry.end_error(send, exc, outcome=_status_outcome(status))
            raise
        if send is not None:
            request = None
            body = None
            status = None
            try:
                prepared = response.request
                request = self._describe(send, provider, prepared.body, _header(prepared.headers, "Content-Type"))
                status = response.status_code
                content = getattr(response, "_content", None)  # bytes once requests has read the body
                body = content if isinstance(content, bytes) else None
            except Exception:
                internal_error(f"{provider} requests response")
            if isinstance(status, int):
                self._finish(send, provider, status, body, request)
            else:
                self.telemetry.end_ok(send, None)
        return response

    # --- httpx: Client.send(request, *, stream=False, auth=..., follow_redirects=...)
    def _httpx_match(self, args, kwargs):
        request = args[0] if args else kwargs.get("request")
        try:
            url = request.url
            provider = endpoints().match(url.scheme, url.host, url.port, url.path) if request.method == "POST" else None
        except Exception:
            internal_error("httpx match")
            return None
        if provider is None or inside_send():
            return None
        return provider, (url.host, url.port or DEFAULT_PORTS.get(url.scheme)), request

    def _httpx_start(self, provider, server, request):
        send = self.telemetry.start(provider, server)
        described = None
        if send is not None:
            described = self._describe(send, provider, httpx_body(request), _header(request.headers, "content-type"))
        return send, described

    def _httpx_end(self, send, provider, response, described) -> None:
        if send is None:
            return
        status, body = None, None
        try:
            status = response.status_code
            try:
                body = response.content  # raises ResponseNotRead for an unread stream
            except Exception:
                body = None
        except Exception:
            internal_error(f"{provider} httpx response")
        if isinstance(status, int):
            self._finish(send, provider, status, body, described)
        else:
            self.telemetry.end_ok(send, None)

    def _httpx_error(self, send, exc) -> None:
        status = None
        try:
            status = getattr(vars(exc).get("response"), "status_code", None)  # httpx.HTTPStatusError
        except Exception:
            pass
        self.telemetry.end_error(send, exc, outcome=_status_outcome(status))

    def _httpx_send(self, wrapped, instance, args, kwargs):
        matched = self._httpx_match(args, kwargs) if self.active else None
        if matched is None:
            return wrapped(*args, **kwargs)
        provider, server, request = matched
        send, described = self._httpx_start(provider, server, request)
        if send is not None and delivery_tracking.enabled():
            args, kwargs = delivery_tracking.guarded(delivery_tracking.httpx_call, provider, send,
                                                     args, kwargs, fallback=(args, kwargs))
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            self._httpx_error(send, exc)
            raise
        self._httpx_end(send, provider, response, described)
        return response

    def _httpx_async_send(self, wrapped, instance, args, kwargs):
        matched = self._httpx_match(args, kwargs) if self.active else None
        if matched is None:
            return wrapped(*args, **kwargs)
        return self._httpx_async_traced(matched, wrapped, args, kwargs)

    async def _httpx_async_traced(self, matched, wrapped, args, kwargs):
        provider, server, request = matched
        send, described = self._httpx_start(provider, server, request)  # in the task that awaits the send
        if send is not None and delivery_tracking.enabled():
            args, kwargs = delivery_tracking.guarded(delivery_tracking.httpx_call, provider, send,
                                                     args, kwargs, fallback=(args, kwargs))
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._httpx_error(send, exc)
            raise
        self._httpx_end(send, provider, response, described)
        return response
