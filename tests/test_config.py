"""The config file: defaults, validation messages, unknown keys and the config command."""

from __future__ import annotations

import re

import pytest

from expression_portrait import cli
from expression_portrait.config import Config, dump_toml, load_config, parse_config
from expression_portrait.errors import ConfigError

REPO_SAMPLE = "deploy/config.toml"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "kiosk.toml")
    assert caught.value.exit_code == 78
    return caught.value.problems


def test_empty_file_gives_defaults():
    config = parse_config("")

    assert config == Config()
    assert config.camera.width == 1280
    assert config.control.socket == "/run/expression-portrait/control.sock"


def test_values_are_read():
    config = parse_config('[camera]\nfps = 10.0\nrotation = 180\n[buttons]\nnext_pin = 5\n')

    assert config.camera.fps == 10.0
    assert config.camera.rotation == 180
    assert config.buttons.next_pin == 5


def test_out_of_range_message():
    found = problems("[camera]\nwidth = 1280\nfps = 500.0\n")

    assert found == ["kiosk.toml:3: [camera] fps = 500.0: Input should be less than or equal to 60 "
                     "(allowed: 1.0 <= fps <= 60.0)"]


def test_wrong_type_is_rejected_strictly():
    found = problems('[camera]\nfps = "fast"\nhflip = 1\n')

    assert len(found) == 2
    assert 'kiosk.toml:2: [camera] fps = "fast": Input should be a valid number' in found[0]
    assert "kiosk.toml:3: [camera] hflip = 1: Input should be a valid boolean (allowed: true or false)" == found[1]


def test_choice_lists_allowed_values():
    found = problems("[camera]\nrotation = 45\n")

    assert len(found) == 1
    assert "[camera] rotation = 45" in found[0]
    assert "0, 90, 180, 270" in found[0]


def test_unknown_key_gets_hint():
    found = problems("[camera]\nfsp = 10.0\n")

    assert found == ["kiosk.toml:2: [camera] fsp: unknown key; did you mean 'fps'?"]


def test_unknown_section_gets_hint():
    found = problems("[dispaly]\nfps = 10\n")

    assert found == ["kiosk.toml:1: [dispaly]: unknown section; did you mean 'display'?"]


def test_unknown_key_without_likeness_lists_keys():
    found = problems("[metrics]\nbanana = 1\n")

    assert "unknown key; known keys: enabled, directory, interval_s" in found[0]


def test_every_problem_reported_at_once():
    text = ("[camera]\nfps = 0.0\nwidht = 640\n[buttons]\nnext_pin = 99\n"
            "[vision]\nmax_faces = 0\n[logging]\nlevel = \"loud\"\n")

    found = problems(text)

    assert len(found) == 5
    assert any("[camera] fps = 0.0" in p for p in found)
    assert any("[camera] widht: unknown key; did you mean 'width'?" in p for p in found)
    assert any("kiosk.toml:5: [buttons] next_pin = 99" in p for p in found)
    assert any("kiosk.toml:7: [vision] max_faces = 0" in p for p in found)
    assert any('kiosk.toml:9: [logging] level = "loud"' in p and "debug" in p for p in found)


def test_cross_field_rule_is_reported():
    found = problems("[camera]\nanalysis_width = 640\nanalysis_height = 480\n")

    assert len(found) == 1
    assert "aspect ratio" in found[0]


def test_other_parts_rules_are_reported():
    found = problems('[flow]\ntargets = ["happy", "bored"]\n')

    assert "[flow] targets" in found[0]
    assert "'bored'" in found[0]


def test_toml_syntax_error():
    found = problems("[camera\nfps = 1\n")

    assert found[0].startswith("kiosk.toml: not valid TOML:")


def test_explicit_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")


def test_default_path_absent_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPRESSION_PORTRAIT_CONFIG", raising=False)
    monkeypatch.setattr("expression_portrait.config.DEFAULT_PATH", tmp_path / "none.toml")

    loaded = load_config()

    assert loaded.path is None
    assert loaded.config == Config()


def test_dump_round_trips():
    config = parse_config("[camera]\nfps = 12.0\n[vision]\nmax_faces = 4\n")

    again = parse_config(dump_toml(config))

    assert again == config


def test_sample_config_passes_check(capsys):
    assert cli.main(["config", "check", REPO_SAMPLE]) == 0
    assert "OK" in capsys.readouterr().out


def test_sample_config_sets_every_key():
    text = open(REPO_SAMPLE, encoding="utf-8").read()
    config = parse_config(text, REPO_SAMPLE)
    for section, model in config:
        for key in type(model).model_fields:
            assert f"\n# {key} =" in text, (
                f"[{section}] {key} is not in {REPO_SAMPLE}; regenerate it with "
                f"expression-portrait config sample > {REPO_SAMPLE}")


def test_config_check_fails_on_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[camera]\nfps = 500.0\n")

    code = cli.main(["config", "check", str(bad)])

    assert code == 78
    assert "[camera] fps = 500.0" in capsys.readouterr().err


def test_config_show_prints_effective_values(tmp_path, capsys):
    file = tmp_path / "c.toml"
    file.write_text("[camera]\nfps = 9.0\n")

    assert cli.main(["config", "show", str(file)]) == 0

    shown = capsys.readouterr().out
    assert "fps = 9.0" in shown
    assert parse_config(shown.split("\n", 1)[1]).camera.fps == 9.0


def test_sample_defaults_are_the_built_in_ones(capsys):
    assert cli.main(["config", "sample"]) == 0
    sample = capsys.readouterr().out

    key_line = re.compile(r"^# [a-z_]+ = (?!\s*\(unset\))")
    uncommented = "\n".join(line[2:] if key_line.match(line) else line for line in sample.splitlines())

    assert parse_config(uncommented) == Config()
