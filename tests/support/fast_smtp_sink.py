"""A minimal, fast SMTP sink for load tests: a real TCP server that accepts every message.

aiosmtpd costs a few milliseconds of server CPU per message, which dominates a
test that sends tens of thousands; this sink speaks just enough SMTP for
smtplib/aiosmtplib clients (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), one
thread per connection, and counts what it accepted.

    with FastSink() as sink:
        smtplib.SMTP("127.0.0.1", sink.port).sendmail(...)
        sink.accepted
"""

from __future__ import annotations

import socketserver
import threading


class FastSink:
    def __init__(self):
        self.accepted = 0
        self.recipients = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                write, readline = self.wfile.write, self.rfile.readline
                write(b"220 sink.test ESMTP\r\n")
                while True:
                    line = readline(65536)
                    if not line:
                        return
                    verb = line[:4].upper()
                    if verb == b"DATA":
                        write(b"354 go ahead\r\n")
                        while True:
                            data = readline(1 << 20)
                            if not data or data == b".\r\n":
                                break
                        with sink._lock:
                            sink.accepted += 1
                        write(b"250 2.0.0 queued\r\n")
                    elif verb == b"EHLO":
                        write(b"250-sink.test\r\n250-8BITMIME\r\n250 SIZE 104857600\r\n")
                    elif verb == b"RCPT":
                        with sink._lock:
                            sink.recipients += 1
                        write(b"250 2.1.5 ok\r\n")
                    elif verb == b"QUIT":
                        write(b"221 2.0.0 bye\r\n")
                        return
                    else:  # HELO, MAIL, RSET, NOOP
                        write(b"250 2.0.0 ok\r\n")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.host, self.port = self.server.server_address
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FastSink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FastSink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
