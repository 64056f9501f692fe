"""systemd notifications over a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from expression_portrait.notify import Notifier, Watchdog, watchdog_interval


@pytest.fixture
def listener(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(1.0)
    yield path, sock
    sock.close()


def receive(sock) -> str:
    return sock.recv(4096).decode()


def test_ready_and_status_in_one_datagram(listener):
    path, sock = listener
    notifier = Notifier(socket_path=path)

    assert notifier.ready("camera ok, 15.0 fps")

    assert receive(sock) == "READY=1\nSTATUS=camera ok, 15.0 fps"


def test_status_is_one_line(listener):
    path, sock = listener

    Notifier(socket_path=path).status("state: attract\nfps 14")

    assert receive(sock) == "STATUS=state: attract fps 14"


def test_stopping_and_watchdog(listener):
    path, sock = listener
    notifier = Notifier(socket_path=path)

    notifier.watchdog()
    notifier.stopping("shutting down")

    assert receive(sock) == "WATCHDOG=1"
    assert receive(sock) == "STOPPING=1\nSTATUS=shutting down"


def test_environment_socket_used(listener, monkeypatch):
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)

    assert Notifier(use_systemd=False).ready()

    assert receive(sock) == "READY=1"


def test_abstract_socket():
    name = f"expression-portrait-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(1.0)
    try:
        assert Notifier(socket_path="@" + name).ready()
        assert receive(sock) == "READY=1"
    finally:
        sock.close()


def test_no_socket_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier(use_systemd=False)

    assert not notifier.enabled
    assert notifier.ready() is False


def test_dead_socket_is_not_fatal(tmp_path):
    notifier = Notifier(socket_path=str(tmp_path / "gone.sock"))

    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_watchdog_interval_from_environment(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "20000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 20.0

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 20.0

    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert watchdog_interval() is None

    monkeypatch.setenv("WATCHDOG_USEC", "0")
    monkeypatch.delenv("WATCHDOG_PID")
    assert watchdog_interval() is None


def drain(sock) -> list[tuple[float, str]]:
    messages = []
    sock.settimeout(0.0)
    try:
        while True:
            messages.append((time.monotonic(), receive(sock)))
    except BlockingIOError:
        pass
    sock.settimeout(1.0)
    return messages


def run_loop(watchdog: Watchdog, seconds: float, *, frames: bool, renders: bool, recovering: bool = False):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if frames:
            watchdog.frame_arrived()
        if renders:
            watchdog.rendered()
        if recovering:
            watchdog.recovering()
        watchdog.tick()
        time.sleep(0.01)


def test_watchdog_pings_at_half_timeout_while_alive(listener):
    path, sock = listener
    watchdog = Watchdog(Notifier(socket_path=path), timeout=1.0)
    pings: list[tuple[float, str]] = []

    def record():
        sock.settimeout(0.8)
        try:
            while True:
                message = receive(sock)
                pings.append((time.monotonic(), message))
        except TimeoutError:
            pass

    receiver = threading.Thread(target=record)
    receiver.start()
    start = time.monotonic()
    run_loop(watchdog, 2.6, frames=True, renders=True)
    receiver.join()

    assert [m for _, m in pings] == ["WATCHDOG=1"] * len(pings)
    assert 4 <= len(pings) <= 6
    gaps = [b - a for (a, _), (b, _) in zip([(start, "")] + pings, pings, strict=False)]
    # Pings come every half timeout (0.5 s); scheduling jitter on a busy machine may
    # stretch one gap, but none may reach the timeout itself.
    assert all(0.3 <= gap < 1.0 for gap in gaps), gaps
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(0.5, abs=0.1), gaps


def test_watchdog_stops_when_camera_stalls(listener):
    path, sock = listener
    watchdog = Watchdog(Notifier(socket_path=path), timeout=0.2)
    run_loop(watchdog, 0.3, frames=True, renders=True)
    drain(sock)

    # Liveness seen before the fault may still pay for one last ping.
    run_loop(watchdog, 0.15, frames=False, renders=True)
    assert len(drain(sock)) <= 1

    run_loop(watchdog, 0.5, frames=False, renders=True)

    assert drain(sock) == []


def test_watchdog_stops_when_render_hangs(listener):
    path, sock = listener
    watchdog = Watchdog(Notifier(socket_path=path), timeout=0.2)
    run_loop(watchdog, 0.3, frames=True, renders=True)
    drain(sock)

    # Liveness seen before the fault may still pay for one last ping.
    run_loop(watchdog, 0.15, frames=True, renders=False)
    assert len(drain(sock)) <= 1

    run_loop(watchdog, 0.5, frames=True, renders=False)

    assert drain(sock) == []


def test_watchdog_continues_while_recovering_camera(listener):
    path, sock = listener
    watchdog = Watchdog(Notifier(socket_path=path), timeout=0.2)

    run_loop(watchdog, 0.55, frames=False, renders=True, recovering=True)

    assert len(drain(sock)) >= 4


def test_watchdog_disabled_without_timeout(listener):
    path, sock = listener
    watchdog = Watchdog(Notifier(socket_path=path), timeout=None)

    run_loop(watchdog, 0.1, frames=True, renders=True)

    assert not watchdog.enabled
    assert drain(sock) == []


def test_systemd_python_sender(listener, monkeypatch):
    pytest.importorskip("systemd.daemon", reason="systemd-python is not installed (apt install python3-systemd)")
    path, sock = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)

    notifier = Notifier(use_systemd=True)

    assert notifier.ready("camera ok")
    assert receive(sock) == "READY=1\nSTATUS=camera ok"
