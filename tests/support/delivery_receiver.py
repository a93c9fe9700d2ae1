"""The delivery receiver mounted in real servers, in this process or under the launcher.

- `Served(app, kind)`: the WSGI app on a threaded wsgiref server or the ASGI app on uvicorn,
  in a thread on a free loopback port, mounted below `/hooks` (the app routes on the last
  path segment, as a Django/Flask/FastAPI mount leaves it). `url(provider)` is where a
  provider posts.
- `receiver_process(kind, env, port)`: the receiver as a service under `opentelemetry-instrument`:
  `mailscope webhooks serve` (wsgiref) or `uvicorn` serving `mailscope.delivery:asgi_app`
  (a factory), either way reading its keys from the environment.
"""

from __future__ import annotations

import subprocess
import threading
import time
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.support.launcher import INSTRUMENT, VENV_BIN, free_port

HOST = "127.0.0.1"
MOUNT = "/hooks"


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def _mounted_wsgi(app):
    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(MOUNT + "/"):
            environ["SCRIPT_NAME"], environ["PATH_INFO"] = MOUNT, path[len(MOUNT):]
        return app(environ, start_response)

    return mounted


class Served:
    def __init__(self, app, kind: str, mount: bool = True):
        """`mount=False`: `app` does its own routing below /hooks (a Flask app with the receiver mounted)."""
        self.app, self.kind, self.mount = app, kind, mount
        self.port = None
        self._server = None
        self._thread = None

    def url(self, provider: str) -> str:
        return f"http://{HOST}:{self.port}{MOUNT}/{provider}"

    def __enter__(self):
        if self.kind == "wsgi":
            app = _mounted_wsgi(self.app) if self.mount else self.app
            self._server = make_server(HOST, 0, app, server_class=_Server, handler_class=_Quiet)
            self.port = self._server.server_port
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            daemon=True)
        else:
            import uvicorn

            self.port = free_port()
            config = uvicorn.Config(self.app, host=HOST, port=self.port, log_level="warning", lifespan="on",
                                    root_path=MOUNT)
            self._server = uvicorn.Server(config)
            self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        if self.kind == "asgi":
            deadline = time.monotonic() + 30
            while not self._server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        if self.kind == "wsgi":
            self._server.shutdown()
            self._server.server_close()
        else:
            self._server.should_exit = True
        self._thread.join(timeout=30)


def receiver_process(kind: str, env: dict, port: int) -> subprocess.Popen:
    """The receiver under opentelemetry-instrument; returns once it answers on `port`."""
    if kind == "wsgi":
        command = [INSTRUMENT, str(VENV_BIN / "mailscope"), "webhooks", "serve", "--host", HOST, "--port", str(port)]
    else:
        command = [INSTRUMENT, str(VENV_BIN / "uvicorn"), "--factory", "mailscope.delivery:asgi_app",
                   "--host", HOST, "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    import socket

    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"receiver exited: {process.communicate()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return process
        except OSError:
            if time.monotonic() >= deadline:
                process.kill()
                raise AssertionError(f"receiver did not start: {process.communicate()}")
            time.sleep(0.1)
