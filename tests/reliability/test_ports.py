"""The test suite's port allocator (tests/support/launcher.free_port).

A CI run failed with Jaeger's "bind: address already in use": the old allocator bound port 0,
closed it and handed out the number, which left it in the kernel's ephemeral range, free for any
outgoing connection's source port and for the next `bind(0)`. These tests pin the three
properties the replacement has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.launcher import REPO, free_port

TAKE = """
import sys
from tests.support.launcher import free_port
print(" ".join(str(free_port()) for _ in range(int(sys.argv[1]))), flush=True)
sys.stdin.read()  # hold the reservations until the parent has compared
"""


def _ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_ports_never_come_from_the_ephemeral_range_and_never_repeat():
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(400)]
    assert len(set(ports)) == len(ports)
    assert not [p for p in ports if low <= p <= high]
    assert all(1024 <= p <= 65535 for p in ports)


def test_another_process_on_the_host_never_gets_a_port_this_one_holds():
    """300 ports each, at random from ~22,000: without the host-wide reservation two processes
    would share one about 98% of the time."""
    mine = {free_port() for _ in range(300)}
    child = subprocess.Popen([sys.executable, "-c", TAKE, "300"], cwd=str(REPO), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        theirs = {int(p) for p in child.stdout.readline().split()}
    finally:
        child.communicate("", timeout=30)
    assert len(theirs) == 300
    assert not mine & theirs


def test_a_port_someone_listens_on_is_never_handed_out():
    import socket

    from tests.support.launcher import _PORTS

    listeners = []
    try:
        for port in range(_PORTS.low, _PORTS.low + 2000):  # occupy a block, then draw from a pool of that block
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            s.listen(1)
            listeners.append(s)
        busy = {s.getsockname()[1] for s in listeners}
        pool = type(_PORTS)()
        pool.high = pool.low + 2999  # a third of the draws land in the occupied block
        drawn = [pool.take() for _ in range(200)]
    finally:
        for s in listeners:
            s.close()
    assert not busy & set(drawn)
