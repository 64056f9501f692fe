"""Load and check the curator-editable text of the kiosk, one TOML file per language.

A language file has these tables:

- ``[meta]``: ``language`` (the code, matching the file name) and ``name`` (as
  shown on the language hint, in that language);
- ``[strings]``: every line of the screens, some with ``{placeholders}``;
- ``[emotions]`` and ``[gender]``: the words for the models' labels;
- ``[pages]``: ``order``, the explanation pages after the verdict, and one
  ``[pages.<id>]`` table per text page with ``title``, ``body`` (a list of
  paragraphs) and ``sources`` (a list, at least one).

Two page ids in ``order`` are built by the kiosk rather than written out:
``saw`` (the chips each model received, with captions from ``[strings]``) and
``extra_heads`` (one page per extra model in the manifest, from its
``training_data`` text). Loading raises a ContentError naming the file and the
key for a missing or unknown key, an unknown placeholder or a page without
sources. Whether every page fits the screen is checked by ``screens.check_fits``.
"""

from __future__ import annotations

import string
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expression_portrait.errors import ContentError
from expression_portrait.ui.settings import EMOTION_LABELS

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"

SAW_PAGE = "saw"
EXTRA_HEADS_PAGE = "extra_heads"
RACE_PAGE = "race"
BUILT_PAGES = (SAW_PAGE, EXTRA_HEADS_PAGE)
GENDER_LABELS = ("female", "male")

# Every key of [strings], with the placeholders its text may use.
STRINGS: dict[str, frozenset[str]] = {
    "title": frozenset(),
    "invitation": frozenset(),
    "privacy": frozenset(),
    "prompt": frozenset(),
    "prompt_hint": frozenset(),
    "countdown_hint": frozenset(),
    "capture": frozenset(),
    "notice_face_lost": frozenset(),
    "notice_one_at_a_time": frozenset(),
    "notice_new_sitter": frozenset(),
    "verdict_title": frozenset(),
    "percent": frozenset({"value"}),  # a percentage in bars and lists, e.g. "{value}%"
    "verdict_line": frozenset({"asked", "seen", "percent"}),
    "emotion_heading": frozenset(),
    "age_line": frozenset({"age", "low", "high"}),
    "gender_line": frozenset({"label", "percent"}),
    "gender_note": frozenset(),
    "race_line": frozenset({"page", "title"}),
    "extra_line": frozenset({"title", "values"}),
    "verdict_sources": frozenset(),
    "hint_verdict": frozenset({"language"}),
    "hint_page": frozenset({"language"}),
    "page_counter": frozenset({"page", "pages"}),
    "sources_label": frozenset(),
    "saw_title": frozenset(),
    "saw_intro": frozenset(),
    "saw_chip_caption": frozenset({"title", "size"}),
    "head_emotion": frozenset(),
    "head_age": frozenset(),
    "head_gender": frozenset(),
    "saw_detector_caption": frozenset({"score"}),
    "saw_sources": frozenset(),
    "extra_page_title": frozenset({"title"}),
    "extra_page_intro": frozenset({"dataset"}),
    "extra_page_source": frozenset(),
    "out_of_order_title": frozenset(),
    "out_of_order_body": frozenset(),
    "technician_label": frozenset(),
}
PAGE_KEYS = ("title", "body", "sources")


@dataclass(frozen=True)
class Page:
    """One explanation page of text."""

    id: str
    title: str
    body: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Content:
    """The checked text of one language."""

    path: Path
    language: str
    name: str
    strings: dict[str, str]
    emotions: dict[str, str]
    gender: dict[str, str]
    order: tuple[str, ...]
    pages: dict[str, Page]

    @property
    def file(self) -> str:
        return self.path.name

    def text(self, key: str, **values: Any) -> str:
        """Return the string ``key`` with its placeholders filled in."""
        return self.strings[key].format(**values) if values else self.strings[key]

    def emotion(self, label: str) -> str:
        return self.emotions.get(label, label)

    def gender_label(self, label: str) -> str:
        return self.gender.get(label, label)


def load_content(path: str | Path) -> Content:
    """Read and check one language file."""
    path = Path(path)
    try:
        # utf-8-sig also accepts the byte order mark some Windows editors write.
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise ContentError(f"{path}: content file not found") from exc
    except UnicodeDecodeError as exc:
        raise ContentError(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc
    except OSError as exc:
        raise ContentError(f"{path}: cannot read the content file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"{path.name}: not valid TOML ({exc})") from exc
    return _Checker(path, document).content()


def load_languages(languages: list[str], folder: str | Path | None = None) -> dict[str, Content]:
    """Load ``<folder>/<code>.toml`` for each language code, in order."""
    folder = Path(folder) if folder is not None else CONTENT_DIR
    bundle = {}
    for code in languages:
        content = load_content(folder / f"{code}.toml")
        if content.language != code:
            raise ContentError(
                f"{content.file}: key meta.language is {content.language!r}, expected {code!r} "
                "to match the file name"
            )
        first = next(iter(bundle.values()), None)
        if first is not None and content.order != first.order:
            raise ContentError(
                f"{content.file}: key pages.order differs from {first.file}'s; every language "
                "must list the same pages in the same order, so a language switch keeps the page"
            )
        bundle[code] = content
    return bundle


class _Checker:
    def __init__(self, path: Path, document: dict[str, Any]) -> None:
        self.path = path
        self.document = document

    def fail(self, key: str, problem: str) -> ContentError:
        return ContentError(f"{self.path.name}: key {key} {problem}")

    def table(self, key: str, parent: dict[str, Any] | None = None, name: str | None = None) -> dict:
        parent = self.document if parent is None else parent
        value = parent.get(name or key)
        if value is None:
            return self._missing(key)
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def _missing(self, key: str):
        raise self.fail(key, "is missing")

    def text(self, key: str, value: Any, allowed: frozenset[str] = frozenset()) -> str:
        if value is None:
            self._missing(key)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be non-empty text")
        control = next((c for c in value if unicodedata.category(c) == "Cc" and c not in "\n\t"), None)
        if control is not None:
            raise self.fail(key, f"contains the control character U+{ord(control):04X}; remove it")
        try:
            parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(value)
                      if name is not None]
        except ValueError as exc:
            raise self.fail(key, f"has a broken placeholder ({exc}); write a literal brace as {{{{ or }}}}") from exc
        # The screens fill placeholders with text and whole numbers of their own
        # choosing, so a format spec or conversion could fail only when drawn.
        for name, spec, conversion in parsed:
            if not spec and not conversion:
                continue
            written = name
            if conversion:
                written += f"!{conversion}"
            if spec:
                written += f":{spec}"
            raise self.fail(key, f"uses {{{written}}}: placeholders take no format spec or conversion; "
                            f"write {{{name}}}")
        fields = {name for name, _, _ in parsed}
        unknown = fields - allowed
        if unknown:
            allowed_text = ", ".join(sorted(f"{{{a}}}" for a in allowed)) or "none"
            raise self.fail(key, f"uses unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {allowed_text}")
        return value

    def texts(self, key: str, value: Any) -> tuple[str, ...]:
        if value is None:
            self._missing(key)
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty list of text")
        return tuple(self.text(f"{key}[{i}]", item) for i, item in enumerate(value))

    def exact_keys(self, prefix: str, table: dict[str, Any], expected: tuple[str, ...] | list[str]) -> None:
        for name in expected:
            if name not in table:
                self._missing(f"{prefix}.{name}")
        for name in table:
            if name not in expected:
                raise self.fail(f"{prefix}.{name}", "is not known; check its spelling")

    def content(self) -> Content:
        self.exact_keys("<top level>", self.document, ["meta", "strings", "emotions", "gender", "pages"])

        meta = self.table("meta")
        self.exact_keys("meta", meta, ["language", "name"])
        language = self.text("meta.language", meta["language"])
        name = self.text("meta.name", meta["name"])

        strings_table = self.table("strings")
        self.exact_keys("strings", strings_table, list(STRINGS))
        strings = {key: self.text(f"strings.{key}", strings_table[key], allowed)
                   for key, allowed in STRINGS.items()}

        emotions_table = self.table("emotions")
        self.exact_keys("emotions", emotions_table, EMOTION_LABELS)
        emotions = {label: self.text(f"emotions.{label}", emotions_table[label]) for label in EMOTION_LABELS}

        gender_table = self.table("gender")
        self.exact_keys("gender", gender_table, GENDER_LABELS)
        gender = {label: self.text(f"gender.{label}", gender_table[label]) for label in GENDER_LABELS}

        order, pages = self.pages(self.table("pages"))
        return Content(self.path, language, name, strings, emotions, gender, order, pages)

    def pages(self, table: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Page]]:
        order = self.texts("pages.order", table.get("order"))
        if len(set(order)) != len(order):
            raise self.fail("pages.order", "lists a page twice")
        if RACE_PAGE not in order:
            raise self.fail("pages.order", f"must include {RACE_PAGE!r}: the verdict's race line points to it")

        text_pages = [page_id for page_id in order if page_id not in BUILT_PAGES]
        self.exact_keys("pages", table, ["order", *text_pages])
        pages = {}
        for page_id in text_pages:
            key = f"pages.{page_id}"
            page_table = self.table(key, table, page_id)
            self.exact_keys(key, page_table, PAGE_KEYS)
            pages[page_id] = Page(
                id=page_id,
                title=self.text(f"{key}.title", page_table["title"]),
                body=self.texts(f"{key}.body", page_table["body"]),
                sources=self.texts(f"{key}.sources", page_table["sources"]),
            )
        return order, pages
