"""The language files: complete, consistent, and rejected with the file and key when broken."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import re  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from expression_portrait.errors import ContentError  # noqa: E402
from expression_portrait.ui.content import (  # noqa: E402
    CONTENT_DIR,
    STRINGS,
    load_content,
    load_languages,
)
from expression_portrait.ui.screens import check_fits  # noqa: E402
from expression_portrait.ui.settings import EMOTION_LABELS, FlowSettings  # noqa: E402

LANGUAGES = FlowSettings().languages


def copy_with(tmp_path: Path, language: str, edit) -> Path:
    """Copy a shipped language file into tmp_path after ``edit(text) -> text``."""
    text = (CONTENT_DIR / f"{language}.toml").read_text(encoding="utf-8")
    changed = edit(text)
    assert changed != text, "the edit did not change the file"
    path = tmp_path / f"{language}.toml"
    path.write_text(changed, encoding="utf-8")
    return path


@pytest.mark.parametrize("language", LANGUAGES)
def test_shipped_language_loads_complete(language):
    content = load_content(CONTENT_DIR / f"{language}.toml")

    assert content.language == language
    assert set(content.strings) == set(STRINGS)
    assert set(content.emotions) == set(EMOTION_LABELS)
    assert "race" in content.order
    for page in content.pages.values():
        assert page.sources, page.id
        assert page.body, page.id


def test_languages_share_keys_and_page_order():
    bundle = load_languages(LANGUAGES)
    documents = [tomllib.loads((CONTENT_DIR / f"{code}.toml").read_text("utf-8")) for code in LANGUAGES]

    first = bundle[LANGUAGES[0]]
    for code in LANGUAGES[1:]:
        assert bundle[code].order == first.order
        assert set(bundle[code].pages) == set(first.pages)
    for document in documents[1:]:
        for page_id in first.pages:
            # Same number of sources per page: a translation must not drop one.
            assert len(document["pages"][page_id]["sources"]) == len(documents[0]["pages"][page_id]["sources"])


def test_emotion_page_states_disgust_count_from_facts():
    content = load_content(CONTENT_DIR / "en.toml")

    text = " ".join(content.pages["emotion_model"].body)

    assert "547" in text
    assert "35,887" in text


def test_missing_key_names_file_and_key(tmp_path):
    path = copy_with(tmp_path, "fr", lambda t: re.sub(r"\nprivacy = .*\n", "\n", t))

    with pytest.raises(ContentError, match=r"fr\.toml: key strings\.privacy is missing"):
        load_content(path)


def test_missing_page_table_names_key(tmp_path):
    path = copy_with(tmp_path, "en", lambda t: t.replace("[pages.keeps]", "[pages.kept]"))

    with pytest.raises(ContentError, match=r"en\.toml: key pages\.keeps is missing"):
        load_content(path)


def test_misspelt_key_is_rejected(tmp_path):
    path = copy_with(tmp_path, "en", lambda t: t.replace("\ncapture = ", "\ncaptur = "))

    with pytest.raises(ContentError, match=r"en\.toml: key strings\.(captur is not known|capture is missing)"):
        load_content(path)


def test_unknown_placeholder_is_rejected(tmp_path):
    path = copy_with(tmp_path, "en", lambda t: t.replace("({percent}%).", "({percentage}%)."))

    with pytest.raises(ContentError, match=r"strings\.verdict_line uses unknown placeholder \{percentage\}"):
        load_content(path)


def test_page_without_sources_is_rejected(tmp_path):
    def drop_sources(text: str) -> str:
        start = text.index("[pages.fool]")
        head, tail = text[:start], text[start:]
        return head + re.sub(r"sources = \[.*?\]\n", "sources = []\n", tail, flags=re.S)

    path = copy_with(tmp_path, "en", drop_sources)

    with pytest.raises(ContentError, match=r"key pages\.fool\.sources must be a non-empty list"):
        load_content(path)


def test_order_without_race_page_is_rejected(tmp_path):
    path = copy_with(tmp_path, "en", lambda t: t.replace('"extra_heads", "race", ', '"extra_heads", '))

    with pytest.raises(ContentError, match=r"pages\.order must include 'race'"):
        load_content(path)


def test_invalid_toml_names_file(tmp_path):
    path = tmp_path / "en.toml"
    path.write_text("[meta\nlanguage = 'en'\n", encoding="utf-8")

    with pytest.raises(ContentError, match=r"en\.toml: not valid TOML"):
        load_content(path)


def test_missing_file_is_content_error(tmp_path):
    with pytest.raises(ContentError, match="content file not found"):
        load_languages(["en"], tmp_path)


def test_language_must_match_file_name(tmp_path):
    copy_with(tmp_path, "fr", lambda t: t.replace('language = "fr"', 'language = "es"'))
    (tmp_path / "en.toml").write_text((CONTENT_DIR / "en.toml").read_text("utf-8"), "utf-8")

    with pytest.raises(ContentError, match=r"fr\.toml: key meta\.language is 'es'"):
        load_languages(["en", "fr"], tmp_path)


def test_languages_must_share_page_order(tmp_path):
    (tmp_path / "en.toml").write_text((CONTENT_DIR / "en.toml").read_text("utf-8"), "utf-8")
    copy_with(tmp_path, "fr", lambda t: t.replace('"keeps", "backstory"', '"backstory", "keeps"'))

    with pytest.raises(ContentError, match=r"fr\.toml: key pages\.order differs from en\.toml's"):
        load_languages(["en", "fr"], tmp_path)


def test_overflowing_page_names_file_key_and_size(tmp_path):
    long_paragraph = "This sentence makes the page far too long for any screen. " * 40
    path = copy_with(tmp_path, "en", lambda t: t.replace(
        '    "Change the light:', f'    "{long_paragraph}",\n    "Change the light:'))
    content = load_content(path)

    with pytest.raises(ContentError, match=r"en\.toml: key pages\.fool\.body\[\d\] does not fit a 1920x1080 screen"):
        check_fits(content)


def test_too_long_word_in_prompt_is_caught(tmp_path):
    path = copy_with(tmp_path, "en", lambda t: t.replace('happy = "happiness"', 'happy = "' + "joy" * 40 + '"'))
    content = load_content(path)

    with pytest.raises(ContentError, match=r"en\.toml: key emotions\.happy does not fit"):
        check_fits(content)


def french_texts() -> list[str]:
    content = load_content(CONTENT_DIR / "fr.toml")
    texts = list(content.strings.values()) + list(content.emotions.values())
    for page in content.pages.values():
        texts += [page.title, *page.body, *page.sources]
    return texts


def test_french_punctuation_has_no_breaking_space():
    for text in french_texts():
        assert re.search(r" [:;?!%»]", text) is None, text
        assert "« " not in text, text


def test_percent_format_follows_language():
    bundle = load_languages(LANGUAGES)

    assert bundle["en"].text("percent", value=44) == "44%"
    assert bundle["fr"].text("percent", value=44) == "44\u202f%"
