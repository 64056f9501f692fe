"""Run `expression-portrait run` as a subprocess, listening on a real notify socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from expression_portrait import control
from expression_portrait.models import default_models_dir

BIN = Path(sys.executable).with_name("expression-portrait")


class DaemonProcess:
    """One daemon subprocess, its notify messages with arrival times, and its stderr.

    ``home`` becomes HOME, TMPDIR and the XDG folders of the child, so anything it
    writes outside the paths it was given lands there, where a test can look.
    """

    def __init__(self, workdir: Path, config_text: str, *, replay: Path, watchdog_usec: int | None = None,
                 wrapper: list[str] | None = None) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.socket_path = workdir / "control.sock"
        self.notify_path = workdir / "notify.sock"
        self.config_path = workdir / "config.toml"
        self.config_path.write_text(config_text.replace("@SOCKET@", str(self.socket_path)))
        self.stderr_path = workdir / "daemon.stderr"
        self.replay = replay
        self.watchdog_usec = watchdog_usec
        self.wrapper = wrapper or []
        self.messages: list[tuple[float, str]] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._listener.bind(str(self.notify_path))
        self._listener.settimeout(0.2)
        self._listening = True
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self.process: subprocess.Popen | None = None

    def _listen(self) -> None:
        while self._listening:
            try:
                data = self._listener.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("NOTIFY_SOCKET", "WATCHDOG_", "JOURNAL_STREAM", "INVOCATION_ID"))}
        env.update({
            "NOTIFY_SOCKET": str(self.notify_path),
            "HOME": str(self.home),
            "TMPDIR": str(self.home / "tmp"),
            "XDG_CACHE_HOME": str(self.home / "cache"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_RUNTIME_DIR": str(self.home / "run"),
            "EXPRESSION_PORTRAIT_MODELS": os.environ.get("EXPRESSION_PORTRAIT_MODELS") or str(default_models_dir()),
            "PYTHONDONTWRITEBYTECODE": "1",
            "SDL_VIDEODRIVER": "dummy",
            "SDL_AUDIODRIVER": "dummy",
            "GPIOZERO_PIN_FACTORY": "mock",
        })
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        return env

    def start(self) -> DaemonProcess:
        self._thread.start()
        command = [*self.wrapper, str(BIN), "-v", "run", "--config", str(self.config_path),
                   "--replay", str(self.replay), "--display", "headless"]
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(command, cwd=self.workdir, env=self.environment(),
                                            stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        return self

    def wait_message(self, prefix: str, timeout: float, after: float = 0.0) -> tuple[float, str]:
        """Return the first notify message starting with ``prefix`` received after ``after``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for stamp, message in list(self.messages):
                if stamp >= after and message.startswith(prefix):
                    return stamp, message
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited with {self.process.returncode} before {prefix!r}:\n{self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} within {timeout} s; got {[m for _, m in self.messages]}\n{self.stderr()}")

    def request(self, command: str, **params):
        return control.request(command, path=self.socket_path, timeout=20, **params)

    def signal(self, number: int) -> float:
        sent = time.monotonic()
        self.process.send_signal(number)
        return sent

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")[-6000:] if self.stderr_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._listening = False
        self._thread.join(2)
        self._listener.close()
        self.notify_path.unlink(missing_ok=True)
        return self.process.returncode if self.process else 0

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def strace_available() -> bool:
    return shutil.which("strace") is not None
