"""The control socket: requests, errors, permissions and the client's messages."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
import threading

import pytest

from expression_portrait import control
from expression_portrait.errors import ContentError, ControlError


@pytest.fixture
def server(tmp_path):
    events = threading.Event()

    def watch(request):
        yield {"button": "next"}
        yield {"button": "back"}
        events.set()

    handlers = {
        "status": lambda request: {"state": "attract", "echo": request.get("value")},
        "broken": lambda request: 1 / 0,
        "refused": lambda request: (_ for _ in ()).throw(ContentError("no such page")),
        "watch": watch,
    }
    path = tmp_path / "run" / "control.sock"
    instance = control.ControlServer(path, handlers)
    instance.start()
    yield instance
    instance.stop()


def test_status_round_trip(server):
    result = control.request("status", path=server.path, value=3)

    assert result == {"state": "attract", "echo": 3}


def test_socket_mode_is_0660(server):
    mode = stat.S_IMODE(os.stat(server.path).st_mode)

    assert mode == 0o660


def test_unknown_command_lists_known(server):
    with pytest.raises(ControlError, match="unknown command 'stauts'; known: broken, refused, status, watch"):
        control.request("stauts", path=server.path)


def test_handler_error_is_reported(server):
    with pytest.raises(ControlError, match="no such page"):
        control.request("refused", path=server.path)


def test_internal_error_keeps_server_alive(server):
    with pytest.raises(ControlError, match="internal error in broken"):
        control.request("broken", path=server.path)

    assert control.request("status", path=server.path)["state"] == "attract"


def test_malformed_request(server):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.connect(str(server.path))
        client.sendall(b"not json\n")
        reply = json.loads(client.makefile("rb").readline())

    assert reply["ok"] is False
    assert "not JSON" in reply["error"]


def test_streaming_command(server):
    events = list(control.stream_events("watch", path=server.path))

    assert events == [{"button": "next"}, {"button": "back"}]


def test_not_running_message(tmp_path):
    with pytest.raises(ControlError, match="the kiosk daemon is not running: nothing listens on .*systemctl start"):
        control.request("status", path=tmp_path / "absent.sock")


def test_stale_socket_is_replaced(tmp_path):
    path = tmp_path / "control.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # a killed daemon leaves its socket file behind

    with pytest.raises(ControlError, match="not running"):
        control.request("status", path=path)
    instance = control.ControlServer(path, {"status": lambda r: "ok"})
    instance.start()
    try:
        assert control.request("status", path=path) == "ok"
    finally:
        instance.stop()

    assert not path.exists()


def test_second_server_is_refused(server):
    with pytest.raises(ControlError, match="already listening"):
        control.ControlServer(server.path, {}).start()


def test_group_is_applied(tmp_path):
    group = grp.getgrgid(os.getgid()).gr_name
    instance = control.ControlServer(tmp_path / "c.sock", {}, group=group)
    instance.start()
    try:
        assert os.stat(instance.path).st_gid == os.getgid()
    finally:
        instance.stop()


def test_unknown_group_is_a_warning(tmp_path, caplog):
    instance = control.ControlServer(tmp_path / "c.sock", {"status": lambda r: 1}, group="no-such-group-xyz")
    instance.start()
    try:
        assert control.request("status", path=instance.path) == 1
    finally:
        instance.stop()

    assert "cannot give it to group 'no-such-group-xyz'" in caplog.text


def test_permission_denied_message(server, monkeypatch):
    # Root may connect to any socket, so the refusal a technician outside the group
    # would get is raised by the connect call itself.
    class RefusingSocket(socket.socket):
        def connect(self, address):
            raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(control.socket, "socket", RefusingSocket)
    group = grp.getgrgid(os.stat(server.path).st_gid).gr_name

    with pytest.raises(ControlError) as caught:
        control.request("status", path=server.path)

    assert str(caught.value) == (
        f"permission denied on {server.path}: only root and members of group {group!r} may use it; "
        f"run with sudo or sudo usermod -aG {group} $USER, then log in again")
