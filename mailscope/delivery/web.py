"""WSGI and ASGI faces of the `Receiver`, and the standalone server of `mailscope webhooks serve`.

Both adapters read at most `MAX_BODY_BYTES + 1` bytes (a longer Content-Length is refused
before anything is read) and route on the last path segment, so they can be mounted at any
prefix: `/hooks/mailgun` in Django, Flask (`DispatcherMiddleware`) or FastAPI (`app.mount`).
The ASGI app runs the receiver in the default thread pool (it may fetch an SNS certificate)
with the request's context, so its spans link to the server span.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools

from mailscope.delivery.receiver import MAX_BODY_BYTES, Answer, Receiver
from mailscope.delivery import verify

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 500: "Internal Server Error"}


def _status_line(answer: Answer) -> str:
    return f"{answer.status} {_REASONS.get(answer.status, 'Error')}"


def _length(value) -> int | None:
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


def _path_provider(path: str) -> str:
    return str(path or "").rstrip("/").rsplit("/", 1)[-1].lower()


class WSGIApp:
    def __init__(self, receiver: Receiver | None = None, **options):
        self.receiver = receiver or Receiver(**options)

    def __call__(self, environ, start_response):
        answer = self._answer(environ)
        start_response(_status_line(answer), [("Content-Type", "text/plain; charset=utf-8"),
                                              ("Content-Length", str(len(answer.body)))])
        return [answer.body]

    def _answer(self, environ) -> Answer:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        length = _length(environ.get("CONTENT_LENGTH"))
        if length is not None and length > MAX_BODY_BYTES and method.upper() == "POST":
            provider = _path_provider(path)
            if provider in ("mailgun", "sendgrid", "postmark", "ses"):
                return self.receiver.reject(provider, verify.TOO_LARGE)
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            stream = environ["wsgi.input"]
            if length is not None:
                body = stream.read(length)
            elif environ.get("wsgi.input_terminated"):  # a chunked body the server ends for us (gunicorn)
                body = stream.read(MAX_BODY_BYTES + 1)
            else:  # no length: PEP 3333 says read nothing (reading on would wait for the client)
                body = b""
        except Exception:
            body = None
        return self.receiver.handle(path, method, headers, body)


class ASGIApp:
    def __init__(self, receiver: Receiver | None = None, **options):
        self.receiver = receiver or Receiver(**options)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        answer = await self._answer(scope, receive)
        await send({"type": "http.response.start", "status": answer.status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(answer.body)).encode())]})
        await send({"type": "http.response.body", "body": answer.body})

    async def _answer(self, scope, receive) -> Answer:
        path = scope.get("path", "")
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root):]
        method = scope.get("method", "GET")
        headers = {}
        for name, value in scope.get("headers") or ():
            headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        length = _length(headers.get("content-length"))
        provider = _path_provider(path)
        refuse = method.upper() == "POST" and provider in ("mailgun", "sendgrid", "postmark", "ses")
        if refuse and length is not None and length > MAX_BODY_BYTES:
            return self.receiver.reject(provider, verify.TOO_LARGE)  # before reading any of it
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return Answer(400, "disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES and refuse:
                return self.receiver.reject(provider, verify.TOO_LARGE)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        call = functools.partial(contextvars.copy_context().run, self.receiver.handle, path, method, headers, body)
        return await asyncio.get_running_loop().run_in_executor(None, call)


def wsgi_app(**options) -> WSGIApp:
    """The receiver as a WSGI app (`Receiver` options: config, tracer_provider, meter_provider,
    fetch_certificate, confirm_subscription)."""
    return WSGIApp(**options)


def asgi_app(**options) -> ASGIApp:
    """The receiver as an ASGI app (the same options)."""
    return ASGIApp(**options)


def _stop_on_signals() -> None:
    """SIGTERM (docker stop, systemd) and SIGINT end the server the same way: a normal exit, so the
    launcher's exit handlers flush the last events' spans. SIGINT is handled even when the parent
    left it ignored, as a shell does for a background job."""
    import signal
    import threading

    def stop(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)


def serve(host: str = "127.0.0.1", port: int = 8787) -> int:
    """`mailscope webhooks serve`: the WSGI app on a threaded wsgiref server, until interrupted."""
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):  # request lines name no address, but stay quiet like the rest
            pass

    app = wsgi_app()
    _stop_on_signals()
    try:  # a stop signal may come at any point from here on, the listening line included
        with make_server(host, port, app, server_class=Server, handler_class=Quiet) as server:
            print(f"mailscope webhooks: listening on http://{host}:{server.server_port}/"
                  "{mailgun,sendgrid,postmark,ses}", flush=True)
            server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
