"""Servers shared by the reliability tests of one module: a redis-server and an accepting SMTP server."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer
from tests.support.smtp_server import Behaviour, SMTPTestServer


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture(scope="module")
def smtp_port():
    with SMTPTestServer(Behaviour(keep_messages=False)) as server:
        yield server.port
