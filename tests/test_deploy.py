"""Checks of the deployment files that run in about a minute: the systemd unit's sandbox
score and syntax, shellcheck, the installer's dry run and argument errors, and
the Ansible playbooks' syntax check and lint.

The end-to-end run of the installer and the playbook in a Debian chroot is
`make deploy-test` (deploy/test-chroot.sh); it needs minutes and the network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNIT = DEPLOY / "systemd" / "expression-portrait.service"
INSTALL = DEPLOY / "install.sh"
ANSIBLE = DEPLOY / "ansible"

# The Ansible tools are not project dependencies: the tests install these pinned
# versions into a venv cached outside the repository (see ansible_tools below).
ANSIBLE_CORE_VERSION = "2.19.14"
ANSIBLE_LINT_VERSION = "26.10.1"

# Paths install.sh writes on a real install; a dry run must create none of them.
INSTALLED_PATHS = [
    "/opt/expression-portrait",
    "/etc/expression-portrait",
    "/etc/systemd/system/expression-portrait.service",
    "/etc/systemd/journald.conf.d/expression-portrait.conf",
    "/usr/local/bin/expression-portrait",
]


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run: apt-get install {package} "
                    f"(.ci/run installs it)")
    return path


def run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 120), **kwargs)


def unit_entries(path: Path) -> list[tuple[str, str, str]]:
    """Return (section, key, value) for every assignment of a unit file, repeats kept."""
    entries = []
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key.strip(), value.strip()))
    return entries


def unit_values(key: str) -> list[str]:
    return [value for _, k, value in unit_entries(UNIT) if k == key]


# ---------------------------------------------------------------------------
# The unit


def test_unit_security_exposure_safe():
    systemd_analyze = require_tool("systemd-analyze", "systemd")

    result = run([systemd_analyze, "security", "--offline=true", "--no-pager", UNIT])

    match = re.search(r"Overall exposure level for expression-portrait\.service: ([0-9.]+)",
                      result.stdout)
    assert match, f"no exposure level in systemd-analyze output:\n{result.stdout}{result.stderr}"
    exposure = float(match.group(1))
    assert exposure <= 1.0, f"exposure {exposure} is above 1.0:\n{result.stdout}"


@pytest.mark.parametrize(("key", "expected"), [
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("Restart", "on-failure"),
    ("User", "expression-portrait"),
    ("RuntimeDirectory", "expression-portrait"),
    ("StateDirectory", "expression-portrait"),
    ("ConfigurationDirectory", "expression-portrait"),
    ("PrivateNetwork", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", ""),
    ("DevicePolicy", "closed"),
    ("ExecStart", "/opt/expression-portrait/current/venv/bin/expression-portrait run"),
])
def test_unit_setting(key, expected):
    assert unit_values(key) == [expected]


def test_unit_watchdog_and_start_limit():
    watchdog = unit_values("WatchdogSec")
    assert len(watchdog) == 1
    assert 5 <= int(watchdog[0]) <= 60
    assert int(unit_values("StartLimitBurst")[0]) >= 2
    assert int(unit_values("StartLimitIntervalSec")[0]) > 0
    memory_max = unit_values("MemoryMax")
    assert len(memory_max) == 1
    assert memory_max[0].endswith(("M", "G"))


def test_unit_hardware_groups():
    groups = " ".join(unit_values("SupplementaryGroups")).split()
    assert sorted(groups) == ["gpio", "input", "render", "video"]


def test_unit_devices_only_hardware():
    allowed = {entry.split()[0] for entry in unit_values("DeviceAllow")}
    assert allowed == {
        "char-video4linux",      # /dev/video*, /dev/v4l-subdev*
        "char-media",            # /dev/media*
        "char-drm",              # /dev/dri/*
        "char-gpiochip",         # /dev/gpiochip*
        "char-bcm2835-gpiomem",  # /dev/gpiomem on a Pi 4
        "char-rpi-gpiomem",      # /dev/gpiomem0..4 on a Pi 5
        "char-input",            # /dev/input/*
        "char-dma_heap",         # /dev/dma_heap/*
    }


def test_unit_syscall_filter():
    filters = unit_values("SystemCallFilter")
    assert filters[0] == "@system-service"
    assert all(not f.startswith("@") or f == "@system-service" for f in filters if not f.startswith("~"))


def make_installed_tree(root: Path, unit_text: str) -> None:
    """Lay out what install.sh leaves for systemd: the unit, the release's command,
    the current symlink, and the host's own units and /bin/kill for ExecReload."""
    release_bin = root / "opt/expression-portrait/releases/1.0.0/venv/bin"
    release_bin.mkdir(parents=True)
    command = release_bin / "expression-portrait"
    shutil.copy(REPO / ".venv/bin/expression-portrait"
                if (REPO / ".venv/bin/expression-portrait").exists()
                else shutil.which("true"), command)
    command.chmod(0o755)
    (root / "opt/expression-portrait/current").symlink_to("releases/1.0.0")
    (root / "bin").mkdir()
    shutil.copy(shutil.which("kill") or "/bin/kill", root / "bin/kill")
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "expression-portrait.service").write_text(unit_text)


def test_unit_verify_clean(tmp_path):
    systemd_analyze = require_tool("systemd-analyze", "systemd")
    make_installed_tree(tmp_path, UNIT.read_text())

    result = run([systemd_analyze, "verify", f"--root={tmp_path}", "expression-portrait.service"])

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", f"systemd-analyze verify warned:\n{result.stderr}"


def test_unit_verify_catches_missing_command(tmp_path):
    # The same check must fail when ExecStart points nowhere, or it proves nothing.
    systemd_analyze = require_tool("systemd-analyze", "systemd")
    make_installed_tree(tmp_path, UNIT.read_text())
    (tmp_path / "opt/expression-portrait/current").unlink()

    result = run([systemd_analyze, "verify", f"--root={tmp_path}", "expression-portrait.service"])

    assert result.returncode != 0
    assert "/opt/expression-portrait/current/venv/bin/expression-portrait" in result.stderr


def test_unit_verify_catches_unknown_key(tmp_path):
    systemd_analyze = require_tool("systemd-analyze", "systemd")
    make_installed_tree(tmp_path, UNIT.read_text().replace("PrivateNetwork=", "PrivateNetwrk="))

    result = run([systemd_analyze, "verify", f"--root={tmp_path}", "expression-portrait.service"])

    assert "PrivateNetwrk" in result.stderr


# ---------------------------------------------------------------------------
# Shell scripts


def shell_scripts() -> list[Path]:
    return sorted(DEPLOY.rglob("*.sh"))


def test_shell_scripts_found():
    names = {path.name for path in shell_scripts()}
    assert {"install.sh", "test-chroot.sh"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_shellcheck_clean(script):
    shellcheck = require_tool("shellcheck", "shellcheck")

    result = run([shellcheck, "--external-sources", script])

    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_executable():
    for script in shell_scripts():
        assert os.access(script, os.X_OK), f"{script} is not executable; run: chmod +x {script}"


# ---------------------------------------------------------------------------
# install.sh: dry run and argument errors


def installer(*args: str, source: Path | None = None) -> subprocess.CompletedProcess[str]:
    script = (source / "deploy/install.sh") if source else INSTALL
    return run(["bash", script, *args])


def path_states() -> dict[str, float | None]:
    return {path: (os.lstat(path).st_mtime if os.path.lexists(path) else None)
            for path in INSTALLED_PATHS}


def test_dry_run_prints_plan_and_changes_nothing():
    before = path_states()

    result = installer("install", "--dry-run", "--no-start", "--no-pi-packages")

    assert result.returncode == 0, result.stderr
    assert path_states() == before
    plan = result.stdout
    assert "nothing is changed" in plan
    for expected in [
        "==> Debian packages",
        "python3-systemd",
        "expression-portrait",                       # the service user
        "-m venv --system-site-packages",
        "pip install",
        "--editable",
        "/etc/expression-portrait/config.toml",
        "/etc/systemd/system/expression-portrait.service",
        "selftest",
        "--no-pi-packages: skipping python3-picamera2",
    ]:
        assert expected in plan, f"{expected!r} missing from the plan:\n{plan}"
    assert plan.rstrip().splitlines()[-1].startswith("result: ")


def test_dry_run_uninstall_changes_nothing():
    before = path_states()

    result = installer("uninstall", "--dry-run", "--no-start")

    assert result.returncode == 0, result.stderr
    assert path_states() == before
    assert "result: uninstalled" in result.stdout


def test_dry_run_lists_pi_packages_by_default():
    result = installer("install", "--dry-run", "--no-start")

    # The plan names the packages either as missing or as all installed; whether
    # Raspberry Pi's archive has them is checked only on a real run.
    assert result.returncode == 0, result.stderr
    assert "python3-picamera2" in result.stdout
    assert "--no-pi-packages" not in result.stdout


def test_upgrade_without_install_fails():
    if os.path.lexists("/opt/expression-portrait/current"):
        pytest.fail("this machine has the kiosk installed; the test expects a machine without it")

    result = installer("upgrade", "--dry-run", "--no-start")

    assert result.returncode == 1
    assert "run 'install.sh install' first" in result.stderr


def test_rollback_without_previous_fails():
    result = installer("rollback", "--dry-run", "--no-start")

    assert result.returncode == 1
    assert "no previous release" in result.stderr


def test_unknown_option_is_usage_error():
    result = installer("--no-such-option")

    assert result.returncode == 2
    assert "unknown option '--no-such-option'" in result.stderr


def test_unknown_command_is_usage_error():
    result = installer("reinstall")

    assert result.returncode == 2
    assert "unknown command 'reinstall'" in result.stderr


def test_unknown_runtime_is_usage_error():
    result = installer("--dry-run", "--runtime", "tensorflow")

    assert result.returncode == 2
    assert "--runtime 'tensorflow'" in result.stderr


def test_root_without_system_tree_fails(tmp_path):
    result = installer("--dry-run", "--root", str(tmp_path), "--no-apt", "--no-start")

    assert result.returncode == 1
    assert "not a complete system tree" in result.stderr


def test_root_requires_no_apt(tmp_path):
    result = installer("--dry-run", "--root", str(tmp_path), "--no-start")

    assert result.returncode == 1
    assert "--no-apt" in result.stderr


def test_start_needs_running_systemd():
    result = installer("install", "--dry-run", "--no-pi-packages")

    if os.path.isdir("/run/systemd/system"):
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1
        assert "add --no-start" in result.stderr


def test_missing_sample_config_is_named(tmp_path):
    # A source tree with everything install.sh reads except the sample config.
    source = tmp_path / "source"
    (source / "device/expression_portrait").mkdir(parents=True)
    shutil.copy(REPO / "device/expression_portrait/__init__.py", source / "device/expression_portrait")
    shutil.copy(REPO / "setup.cfg", source)
    shutil.copytree(DEPLOY / "systemd", source / "deploy/systemd")
    shutil.copy(INSTALL, source / "deploy/install.sh")

    result = installer("install", "--dry-run", "--no-start", source=source)

    assert result.returncode == 1
    assert f"{source}/deploy/config.toml is missing" in result.stderr


def test_help_lists_commands():
    result = installer("--help")

    assert result.returncode == 0
    for command in ("install", "upgrade", "rollback", "uninstall", "--dry-run", "--no-pi-packages"):
        assert command in result.stdout


# ---------------------------------------------------------------------------
# Ansible


def ansible_tools() -> Path:
    """Return the bin folder of a venv with the pinned ansible-core and ansible-lint,
    creating it on first use under $XDG_CACHE_HOME (or ~/.cache)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "expression-portrait" / f"ansible-{ANSIBLE_CORE_VERSION}-lint-{ANSIBLE_LINT_VERSION}"
    stamp = venv / ".complete"
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        python = shutil.which("python3") or sys.executable
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             f"ansible-core=={ANSIBLE_CORE_VERSION}", f"ansible-lint=={ANSIBLE_LINT_VERSION}"],
            capture_output=True, text=True, timeout=600)
        if install.returncode != 0:
            pytest.fail(f"pip could not install ansible-core and ansible-lint into {venv}:\n"
                        f"{install.stderr[-2000:]}")
        stamp.touch()
    return venv / "bin"


def ansible_env(tools: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{tools}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ANSIBLE / "ansible.cfg")
    env["ANSIBLE_LOCAL_TEMP"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "expression-portrait-ansible")
    return env


@pytest.mark.timeout(900)
@pytest.mark.parametrize("playbook", ["rollout.yml", "rollback.yml"])
def test_playbook_syntax_check(playbook):
    tools = ansible_tools()

    result = run([tools / "ansible-playbook", "--syntax-check", "-i", "inventory.example.yml", playbook],
                 cwd=ANSIBLE, env=ansible_env(tools))

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(900)
def test_playbook_rolls_out_serially():
    text = (ANSIBLE / "rollout.yml").read_text()
    assert re.search(r"^\s+serial: 1$", text, re.MULTILINE)
    assert re.search(r"^\s+max_fail_percentage: 0$", text, re.MULTILINE)
    assert re.search(r"^\s+any_errors_fatal: true$", text, re.MULTILINE)
    health = (ANSIBLE / "roles/expression_portrait/tasks/health.yml").read_text()
    assert "status, --json" in health
    assert "healthy" in health


@pytest.mark.timeout(900)
def test_ansible_lint_production_profile():
    tools = ansible_tools()

    result = run([tools / "ansible-lint", "--offline", "--nocolor"], cwd=ANSIBLE,
                 env=ansible_env(tools), timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
