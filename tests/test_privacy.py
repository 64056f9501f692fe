"""No visitor's picture leaves memory: whole sessions run and no file appears but the screenshot.

The daemon runs as a subprocess on a real video of a face, with a fresh HOME,
TMPDIR and XDG folders, until a session reaches the verdict and the
explanation pages. A technician takes one blurred screenshot to an explicit
path. Afterwards no new file exists in the fresh home or the working folder
except that screenshot and the daemon's captured stderr, and no new picture
file exists in the repository, /tmp or /dev/shm (other programs may write
there at the same time). With strace installed, a second test records every file the daemon
opens for writing and finds none outside /dev, /proc and /sys.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from daemon_process import BIN, DaemonProcess, strace_available
from expression_portrait import media

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
[camera]
analysis_width = 640
analysis_height = 360
[display]
fps = 15
width = 1280
height = 720
[flow]
steady_seconds = 0.3
prompt_seconds = 0.5
countdown_seconds = 1
capture_seconds = 0.5
verdict_seconds = 3.0
page_seconds = 3.0
rest_seconds = 0.0
[models]
num_threads = 1
[control]
socket = "@SOCKET@"
[metrics]
enabled = false
"""

SKIPPED_DIRS = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv", ".venv-tflite"}


def listing(root: Path, *, exclude: tuple[Path, ...] = ()) -> set[Path]:
    files = set()
    for folder, directories, names in os.walk(root):
        here = Path(folder)
        directories[:] = [d for d in directories
                          if d not in SKIPPED_DIRS and not any((here / d) == e or e in (here / d).parents
                                                               for e in exclude)]
        files.update(here / name for name in names)
    return files


# Leading bytes of PNG, JPEG, BMP, TIFF (both byte orders), netpbm, WebP (RIFF) and numpy .npy files.
PICTURE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*", b"P5\n", b"P6\n", b"RIFF",
                 b"\x93NUMPY")


def holds_picture(path: Path) -> bool:
    try:
        with open(path, "rb") as file:
            head = file.read(8)
    except OSError:
        return False
    return head.startswith(PICTURE_MAGIC)


def run_sessions(daemon: DaemonProcess, screenshot: Path) -> set[str]:
    """Let sessions run until the explanation pages show; take one blurred screenshot on the way."""
    daemon.wait_message("READY=1", timeout=90)
    states: set[str] = set()
    refused = ""
    required = {"prompt", "countdown", "capture", "verdict", "explanations"}
    end = time.monotonic() + 90
    while time.monotonic() < end and not required <= states:
        state = daemon.request("status")["kiosk"]["state"]
        states.add(state)
        if state == "verdict" and not screenshot.exists():
            denied = subprocess.run([str(BIN), "screenshot", str(screenshot.with_name("denied.png")),
                                     "--socket", str(daemon.socket_path)], capture_output=True, text=True, timeout=30)
            refused = denied.stderr
            taken = subprocess.run([str(BIN), "screenshot", str(screenshot), "--blur-faces",
                                    "--socket", str(daemon.socket_path)], capture_output=True, text=True, timeout=30)
            assert taken.returncode == 0, taken.stderr
        time.sleep(0.1)
    assert required <= states, (states, daemon.stderr())
    assert "a visitor is being analysed" in refused
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    return states


@pytest.mark.slow
def test_sessions_leave_no_file_behind(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    screenshot = workdir / "shot.png"
    pytest_tmp = tmp_path.parents[1]  # pytest's own folder for this run's tmp_path
    before = {
        "repo": listing(REPO),
        "tmp": listing(Path("/tmp"), exclude=(pytest_tmp,)),
        "shm": listing(Path("/dev/shm")),
    }

    daemon = DaemonProcess(workdir, CONFIG, replay=media.path("WolfgangLanger_Pexels.mp4"))
    with daemon:
        run_sessions(daemon, screenshot)
    assert daemon.process.returncode == 0, daemon.stderr()

    # Other programs (a build, an editor) may write in the repository and /tmp at the same
    # time, so there only new pictures count; the strace test below covers any file.
    assert {p for p in listing(REPO) - before["repo"] if holds_picture(p)} == set()
    assert {p for p in listing(Path("/tmp"), exclude=(pytest_tmp,)) - before["tmp"] if holds_picture(p)} == set()
    assert {p for p in listing(Path("/dev/shm")) - before["shm"] if holds_picture(p)} == set()
    assert listing(daemon.home) == set()
    assert listing(workdir) == {workdir / "config.toml", workdir / "daemon.stderr", screenshot}
    log = daemon.stderr_path.read_text(errors="replace")
    assert "iVBORw0KGgo" not in log  # a base64 PNG
    assert len(log) < 500_000


@pytest.mark.slow
@pytest.mark.skipif(not strace_available(), reason="strace is not installed (apt install strace)")
def test_daemon_opens_no_file_for_writing(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    screenshot = workdir / "shot.png"
    trace = tmp_path / "strace.log"
    wrapper = ["strace", "-f", "-qq", "--seccomp-bpf", "-o", str(trace),
               "-e", "trace=open,openat,creat,rename,renameat,renameat2,link,linkat,mknodat"]

    daemon = DaemonProcess(workdir, CONFIG, replay=media.path("WolfgangLanger_Pexels.mp4"), wrapper=wrapper)
    with daemon:
        run_sessions(daemon, screenshot)

    lines = trace.read_text(errors="replace").splitlines()
    assert any(".tflite" in line for line in lines), "the trace missed the daemon loading its models"
    written = set()
    for line in lines:
        call = re.search(r'(open|openat|creat|rename\w*|link\w*|mknodat)\((?:[^"]*)"([^"]+)"(.*)', line)
        if call is None or "= -1" in line:
            continue
        name, path, rest = call.groups()
        if name.startswith(("open", "openat")) and not re.search(r"O_WRONLY|O_RDWR|O_CREAT", rest):
            continue
        written.add(path)
    allowed = re.compile(r"^(/dev/|/proc/|/sys/)")
    assert {p for p in written if not allowed.match(p)} == set()
