"""pibridge.sdnotify against a real AF_UNIX datagram socket, as systemd listens on one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import pytest

from pibridge import sdnotify


@pytest.fixture
def listener(tmp_path, monkeypatch):
    """A datagram socket standing where systemd's would be, with $NOTIFY_SOCKET pointing at it."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def receive(sock: socket.socket) -> str:
    return sock.recv(4096).decode("utf-8")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (sdnotify.ready, "READY=1"),
        (sdnotify.watchdog, "WATCHDOG=1"),
        (sdnotify.stopping, "STOPPING=1"),
    ],
)
def test_each_state_arrives_as_one_datagram(listener, call, message):
    assert call() is True
    assert receive(listener) == message


def test_notify_sends_several_assignments_in_one_datagram(listener):
    assert sdnotify.notify("READY=1\nSTATUS=connected") is True
    assert receive(listener) == "READY=1\nSTATUS=connected"


def test_status_keeps_to_one_line(listener):
    assert sdnotify.status("outbox: 12 readings\nagent: unreachable") is True
    assert receive(listener) == "STATUS=outbox: 12 readings agent: unreachable"


def test_status_carries_non_ascii_text(listener):
    sdnotify.status("living room 21.5 °C")
    assert receive(listener) == "STATUS=living room 21.5 °C"


def test_abstract_namespace_socket(monkeypatch):
    name = f"pibridge-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    try:
        assert sdnotify.ready() is True
        assert receive(sock) == "READY=1"
    finally:
        sock.close()


def test_without_notify_socket_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    assert sdnotify.ready() is False
    assert sdnotify.watchdog() is False
    assert sdnotify.stopping() is False
    assert sdnotify.status("x") is False


def test_empty_or_foreign_transport_is_a_no_op(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert sdnotify.ready() is False


def test_vanished_socket_returns_false_instead_of_raising(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    assert sdnotify.ready() is False


def test_full_socket_buffer_does_not_block(listener):
    """Nobody reads the socket: sends must start failing rather than hang the main loop."""
    results = [sdnotify.status("x" * 1000) for _ in range(5000)]
    assert results[0] is True
    assert results[-1] is False


def test_child_process_reaches_the_socket_through_its_environment(listener):
    """The daemon runs as a child of systemd: the variable, not Python state, carries the address."""
    code = "from pibridge import sdnotify; raise SystemExit(0 if sdnotify.ready() else 1)"
    env = dict(os.environ)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert receive(listener) == "READY=1"


class TestWatchdogInterval:
    def test_unset_means_no_watchdog(self, monkeypatch):
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        assert sdnotify.watchdog_interval() is None

    def test_microseconds_become_seconds(self, monkeypatch):
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        assert sdnotify.watchdog_interval() == 30.0

    def test_for_this_process(self, monkeypatch):
        monkeypatch.setenv("WATCHDOG_USEC", "2500000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        assert sdnotify.watchdog_interval() == 2.5

    def test_meant_for_another_process(self, monkeypatch):
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
        assert sdnotify.watchdog_interval() is None

    @pytest.mark.parametrize("usec", ["", "0", "-5", "abc", "1.5"])
    def test_nonsense_usec(self, monkeypatch, usec):
        monkeypatch.setenv("WATCHDOG_USEC", usec)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        assert sdnotify.watchdog_interval() is None

    def test_nonsense_pid(self, monkeypatch):
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.setenv("WATCHDOG_PID", "self")
        assert sdnotify.watchdog_interval() is None
