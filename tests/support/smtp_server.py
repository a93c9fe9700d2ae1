"""A real SMTP server for tests: aiosmtpd on a free loopback port, with chosen behaviours.

    with SMTPTestServer(Behaviour(refuse={"bob@example.org": "550 5.1.1 no such user"})) as server:
        smtplib.SMTP(server.host, server.port).sendmail(...)
        server.handler.messages  # what the server accepted

Behaviours (combine freely):
- accept everything (the default), recording each accepted message;
- `refuse`: recipient address -> reply for RCPT (e.g. "452 4.2.2 mailbox full");
- `sender_reply`: a reply refusing MAIL FROM;
- `data_reply`: the reply to the end of DATA (e.g. "554 5.7.1 rejected as spam");
- `drop_at`: "MAIL", "RCPT" or "DATA": the server aborts the TCP connection there;
- `stall_at`: "MAIL", "RCPT" or "DATA": the server stops answering for
  `stall_seconds` (clients with a shorter timeout give up; stop() ends the stall).
Server options: `users` ({login: password}, AUTH without TLS), `starttls` (a
server SSLContext offered via STARTTLS), `implicit_tls` (SMTPS), `greeting` (a
replacement for the 220 greeting, e.g. "554 5.3.2 not accepting mail"),
`greeting_delay` (seconds before the greeting: a server that accepts the TCP
connection and then stalls), `lmtp`.

`TLSFiles.create(tmp_path)` makes a throwaway CA and a server certificate for
127.0.0.1/localhost with trustme and gives server and client contexts.

Run as a script (`python -m tests.support.smtp_server`), it starts an accepting
server in its own process, prints `ready <port>` and serves until stdin closes
(the SMTP benchmark uses that so the server does not share the client's GIL).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.launcher import free_port

HOST = "127.0.0.1"


@dataclass
class Behaviour:
    refuse: dict = field(default_factory=dict)
    sender_reply: str | None = None
    data_reply: str | None = None
    drop_at: str | None = None
    stall_at: str | None = None
    stall_seconds: float = 30.0
    keep_messages: bool = True


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list
    content: bytes


class Handler:
    """aiosmtpd handler hooks implementing a `Behaviour`."""

    def __init__(self, behaviour: Behaviour | None = None):
        self.behaviour = behaviour or Behaviour()
        self.messages: list[Received] = []
        self.accepted = 0
        self.commands: list[str] = []

    async def _interfere(self, server, command: str) -> bool:
        b = self.behaviour
        if b.drop_at == command:
            server.transport.abort()
            return True
        if b.stall_at == command:
            await asyncio.sleep(b.stall_seconds)
        return False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.commands.append("MAIL")
        if await self._interfere(server, "MAIL"):
            return "421 4.3.0 gone"
        if self.behaviour.sender_reply:
            return self.behaviour.sender_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.commands.append("RCPT")
        if await self._interfere(server, "RCPT"):
            return "421 4.3.0 gone"
        reply = self.behaviour.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.commands.append("DATA")
        if await self._interfere(server, "DATA"):
            return "421 4.3.0 gone"
        if self.behaviour.data_reply:
            return self.behaviour.data_reply
        self.accepted += 1
        if self.behaviour.keep_messages:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Message accepted for delivery"


def _authenticator(users: dict):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if users.get(login) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return authenticate


class _Controller(Controller):
    def __init__(self, handler, *, greeting=None, greeting_delay=0.0, lmtp=False, **kwargs):
        self._greeting = greeting
        self._greeting_delay = greeting_delay
        self._lmtp = lmtp
        super().__init__(handler, **kwargs)

    def factory(self):
        cls = LMTP if self._lmtp else SMTP
        if self._greeting or self._greeting_delay:
            cls = _with_greeting(cls, self._greeting, self._greeting_delay)
        return cls(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self):
        if not self._greeting_delay:
            super()._trigger_server()
            return
        # the start-up probe would wait for the stalled greeting: connect without reading
        import socket

        with socket.create_connection((self.hostname, self.port), 1.0):
            pass


def _with_greeting(base, greeting: str | None, delay: float):
    class GreetingServer(base):
        _greeted = False

        async def push(self, status):
            if not self._greeted:
                self._greeted = True
                if delay:
                    await asyncio.sleep(delay)
                status = greeting or status
            await super().push(status)

    return GreetingServer


class SMTPTestServer:
    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        users: dict | None = None,
        starttls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        greeting: str | None = None,
        greeting_delay: float = 0.0,
        lmtp: bool = False,
    ):
        self.handler = Handler(behaviour)
        self.host = HOST
        self.port = 0
        self._options = dict(users=users, starttls=starttls, implicit_tls=implicit_tls, greeting=greeting,
                             greeting_delay=greeting_delay, lmtp=lmtp)
        self._controller = None

    def start(self) -> "SMTPTestServer":
        o = self._options
        kwargs = {"hostname": HOST, "port": free_port(), "greeting": o["greeting"],
                  "greeting_delay": o["greeting_delay"], "lmtp": o["lmtp"],
                  "server_hostname": "mx.test.invalid", "data_size_limit": 64 * 1024 * 1024}
        if o["users"] is not None:
            kwargs.update(authenticator=_authenticator(o["users"]), auth_require_tls=False)
        if o["starttls"] is not None:
            kwargs["tls_context"] = o["starttls"]
        if o["implicit_tls"] is not None:
            kwargs["ssl_context"] = o["implicit_tls"]
        self._controller = _Controller(self.handler, **kwargs)
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    def __enter__(self) -> "SMTPTestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class TLSFiles:
    server_context: ssl.SSLContext
    client_context: ssl.SSLContext  # trusts the throwaway CA
    ca_path: Path

    @classmethod
    def create(cls, directory: Path) -> "TLSFiles":
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert(HOST, "localhost")
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server)
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        ca.configure_trust(client)
        ca_path = Path(directory) / "test-ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        return cls(server, client, ca_path)


def main() -> int:
    server = SMTPTestServer(Behaviour(keep_messages=False)).start()
    print(f"ready {server.port}", flush=True)
    try:
        sys.stdin.read()  # serve until the parent closes our stdin
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
