"""The control socket: how the technician's commands talk to the running kiosk.

The daemon listens on a Unix stream socket, by default
/run/expression-portrait/control.sock, mode 0660 and owned by a configurable
group, so only root and that group's members can connect. Each connection
carries one request, a JSON object on one line such as
``{"command": "status"}``, and gets one JSON line back: ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error": "..."}``. A streaming command
(the live button monitor) sends one JSON line per event until the client
disconnects.
"""

from __future__ import annotations

import grp
import json
import logging
import os
import shutil
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from expression_portrait.errors import ControlError, ExpressionPortraitError

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "/run/expression-portrait/control.sock"
SOCKET_ENV = "EXPRESSION_PORTRAIT_SOCKET"
SOCKET_MODE = 0o660
MAX_REQUEST_BYTES = 64 * 1024
MAX_DISCARD_BYTES = 16 * 1024 * 1024

Handler = Callable[[dict[str, Any]], Any]


class ControlSettings(BaseModel):
    """The [control] section."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    socket: str = Field(DEFAULT_SOCKET, description="path of the control socket")
    group: str = Field(
        "", description="group that owns the socket and may use the technician commands; "
        "empty keeps the daemon's own group")


class ControlServer:
    """Serve JSON requests on a Unix socket, each in its own thread.

    ``handlers`` maps a command name to a function taking the request object
    and returning a JSON-serialisable result, or an iterator of them for a
    streaming command. A handler raising ExpressionPortraitError sends its
    message back as the error; any other exception is logged and reported as
    an internal error.
    """

    def __init__(self, path: str | os.PathLike[str], handlers: dict[str, Handler], *, group: str = "") -> None:
        self.path = Path(path)
        self.handlers = handlers
        self.group = group
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        """Bind the socket, set its mode and group, and start accepting connections."""
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._remove_stale_socket()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        # umask 0o117 creates the socket as 0660 from the start, with no window of wider access.
        old_umask = os.umask(0o117)
        try:
            server.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, SOCKET_MODE)
        if self.group:
            try:
                shutil.chown(self.path, group=self.group)
            except (LookupError, PermissionError) as exc:
                log.warning("control socket %s: cannot give it to group %r: %s; only this user and root "
                            "can use the technician commands", self.path, self.group, exc)
        server.listen(8)
        server.settimeout(0.5)
        self._socket = server
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept, name="control-socket", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)

    def _remove_stale_socket(self) -> None:
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlError(f"{self.path} exists and is not a socket; remove it or choose another [control] socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink(missing_ok=True)  # left behind by a daemon that was killed
            return
        finally:
            probe.close()
        raise ControlError(f"another kiosk daemon is already listening on {self.path}")

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                if not self._stop.is_set():
                    log.exception("control socket %s: accept failed", self.path)
                return
            threading.Thread(target=self._serve, args=(connection,), name="control-request", daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            with connection, connection.makefile("rwb") as stream:
                self._answer(connection, stream)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the client left or stalled, e.g. Ctrl-C on the button monitor

    def _answer(self, connection: socket.socket, stream: Any) -> None:
        connection.settimeout(10)
        line = stream.readline(MAX_REQUEST_BYTES + 1)
        try:
            request = _decode_request(line)
        except ControlError as exc:
            if len(line) > MAX_REQUEST_BYTES:
                _discard_rest_of_line(stream)
            _send(stream, {"ok": False, "error": str(exc)})
            return
        command = request["command"]
        handler = self.handlers.get(command)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            _send(stream, {"ok": False, "error": f"unknown command {command!r}; known: {known}"})
            return

        try:
            result = handler(request)
            if isinstance(result, Iterator):
                connection.settimeout(None)
                for item in result:
                    if self._stop.is_set():
                        break
                    _send(stream, {"ok": True, "event": item})
                return
        except ExpressionPortraitError as exc:
            _send(stream, {"ok": False, "error": str(exc)})
            return
        except OSError:
            raise  # the connection broke; _serve ends it quietly
        except Exception as exc:
            log.exception("control command %r failed", command)
            _send(stream, {"ok": False, "error": f"internal error in {command}: {exc}"})
            return
        _send(stream, {"ok": True, "result": result})

    def stop(self) -> None:
        """Stop accepting, close the socket and remove its file."""
        self._stop.set()
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.path.unlink(missing_ok=True)
        log.info("control socket closed")


def _discard_rest_of_line(stream: Any) -> None:
    """Read an overlong request to its end, so closing the socket does not reset it.

    A Unix socket closed with unread input resets the connection, and the client
    then loses the error sent just before. At most MAX_DISCARD_BYTES are read.
    """
    discarded = 0
    while discarded < MAX_DISCARD_BYTES:
        chunk = stream.readline(MAX_REQUEST_BYTES)
        discarded += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return


def _decode_request(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_REQUEST_BYTES:
        raise ControlError(f"request longer than {MAX_REQUEST_BYTES} bytes")
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers longer than
        # Python's digit limit; RecursionError covers arrays nested thousands deep.
        raise ControlError(f"request is not JSON that this daemon accepts: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("command"), str):
        raise ControlError('request must be a JSON object with a "command" string')
    return request


def _send(stream: Any, message: dict[str, Any]) -> None:
    stream.write(json.dumps(message, default=str).encode("utf-8") + b"\n")
    stream.flush()


def socket_path(explicit: str | None = None) -> Path:
    """Return the socket to use: ``explicit``, $EXPRESSION_PORTRAIT_SOCKET, the config's, or the default."""
    if explicit:
        return Path(explicit)
    if os.environ.get(SOCKET_ENV):
        return Path(os.environ[SOCKET_ENV])
    try:
        from expression_portrait.config import load_config

        return Path(load_config().config.control.socket)
    except ExpressionPortraitError:
        return Path(DEFAULT_SOCKET)


def _connect(path: Path, timeout: float) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    client.settimeout(timeout)
    try:
        client.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        client.close()
        raise ControlError(
            f"the kiosk daemon is not running: nothing listens on {path} ({exc.strerror}); "
            "start it with: sudo systemctl start expression-portrait") from exc
    except PermissionError as exc:
        client.close()
        raise ControlError(_permission_hint(path)) from exc
    except OSError as exc:
        client.close()
        raise ControlError(f"cannot connect to the kiosk daemon at {path}: {exc}") from exc
    return client


def _permission_hint(path: Path) -> str:
    try:
        group = grp.getgrgid(path.stat().st_gid).gr_name
    except (OSError, KeyError):
        group = None
    who = f"members of group {group!r}" if group else "its group"
    fix = f"sudo usermod -aG {group} $USER, then log in again" if group else "ask the administrator"
    return f"permission denied on {path}: only root and {who} may use it; run with sudo or {fix}"


def request(command: str, *, path: str | os.PathLike[str] | None = None, timeout: float = 10.0,
            **params: Any) -> Any:
    """Send one command to the running daemon and return its result; raise ControlError on failure."""
    path = socket_path(str(path) if path else None)
    with _connect(path, timeout) as client, client.makefile("rwb") as stream:
        _send(stream, {"command": command, **params})
        reply = _read_reply(stream, path)
    if not reply.get("ok"):
        raise ControlError(f"the kiosk daemon rejected {command!r}: {reply.get('error', 'no reason given')}")
    return reply.get("result")


def stream_events(command: str, *, path: str | os.PathLike[str] | None = None, **params: Any) -> Iterator[Any]:
    """Send a streaming command and yield each event until the daemon ends the stream."""
    path = socket_path(str(path) if path else None)
    with _connect(path, 10.0) as client, client.makefile("rwb") as stream:
        _send(stream, {"command": command, **params})
        client.settimeout(None)
        while True:
            line = stream.readline()
            if not line:
                return
            message = _parse_reply(line, path)
            if not message.get("ok"):
                raise ControlError(f"the kiosk daemon rejected {command!r}: {message.get('error')}")
            yield message.get("event")


def _read_reply(stream: Any, path: Path) -> dict[str, Any]:
    try:
        line = stream.readline()
    except TimeoutError as exc:
        raise ControlError(f"the kiosk daemon at {path} did not respond within the timeout; it may be hung "
                           "(see: expression-portrait logs)") from exc
    if not line:
        raise ControlError(f"the kiosk daemon at {path} closed the connection without a response")
    return _parse_reply(line, path)


def _parse_reply(line: bytes, path: Path) -> dict[str, Any]:
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ControlError(f"the kiosk daemon at {path} sent a response that is not JSON: {exc}") from exc
    if not isinstance(reply, dict):
        raise ControlError(f"the program listening on {path} sent {type(reply).__name__} JSON, not a "
                           "response object; check that the path is the kiosk's control socket")
    return reply
