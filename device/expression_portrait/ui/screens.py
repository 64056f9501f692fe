"""Draw each screen of the kiosk for any screen size.

``Renderer.draw(view, surface)`` paints one frame of the current screen. The
screens and their layouts:

- attract, prompt, countdown, capture: the live mirror, full screen, with the
  title and invitation, the prompt, the countdown over a face guide, or the
  capture frame;
- verdict: the stylised portrait beside what was asked and what the machine
  sees, the emotion bars, age with its interval, gender, race and extra heads;
- explanation pages: what the machine saw (the chips enlarged pixel by pixel
  and the detector's box and keypoints), one text page per id in the language
  file's page order, and one page per extra head from the manifest;
- out of order, with a technician hint in small print.

Landscape screens put the portrait or picture left of the text; portrait
screens stack them. ``check_fits`` draws every screen of a language at each
supported resolution in strict mode, so text that does not fit is a
ContentError naming the file and key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pygame

from expression_portrait.ui import images
from expression_portrait.ui.content import EXTRA_HEADS_PAGE, RACE_PAGE, SAW_PAGE, Content
from expression_portrait.ui.flow import Notice, State
from expression_portrait.ui.layout import (
    ACCENT,
    BLACK,
    DIM,
    GREY,
    OK,
    WARNING,
    WHITE,
    Canvas,
    Column,
    Fonts,
)
from expression_portrait.ui.settings import EMOTION_LABELS, SUPPORTED_RESOLUTIONS

CORE_HEADS = ("emotion", "age", "gender")
BACKGROUND = (18, 18, 20)
BAR_BACKGROUND = (52, 52, 56)


@dataclass(frozen=True)
class ExtraHead:
    """An attribute model beyond emotion, age and gender, described by its manifest entry."""

    name: str
    title: str
    dataset: str
    training_data: str
    source: str = ""
    labels: tuple[str, ...] = ()


def extra_heads_from_manifest(manifest: Any) -> list[ExtraHead]:
    """Return the manifest's attribute models other than emotion, age and gender."""
    heads = []
    for entry in manifest.heads():
        if entry.name in CORE_HEADS:
            continue
        source = entry.raw.get("source") if isinstance(entry.raw, Mapping) else None
        source = source if isinstance(source, Mapping) else {}
        source_text = ", ".join(str(source[k]) for k in ("attribution", "upstream") if source.get(k))
        heads.append(ExtraHead(entry.name, entry.title, entry.dataset, entry.training_data,
                               source_text, tuple(entry.labels)))
    return heads


@dataclass(frozen=True)
class PageRef:
    """One explanation page: the chips page, a text page of the language file, or an extra head."""

    id: str
    extra: ExtraHead | None = None


def session_pages(content: Content, extra_heads: Sequence[ExtraHead]) -> list[PageRef]:
    """Expand the language file's page order into the pages a session shows."""
    pages = []
    for page_id in content.order:
        if page_id == EXTRA_HEADS_PAGE:
            pages.extend(PageRef(f"extra:{head.name}", head) for head in extra_heads)
        else:
            pages.append(PageRef(page_id))
    return pages


@dataclass
class View:
    """Everything one frame of the screen depends on."""

    state: State
    content: Content
    next_language: str = ""  # name of the language the language button switches to
    frame: np.ndarray | None = None  # newest display frame, RGB
    result: Any = None  # newest FrameResult
    analysis_size: tuple[int, int] | None = None  # (w, h) of the frames the result is about
    target: str | None = None
    countdown: int = 0
    notice: Notice | None = None
    verdict: Any = None
    pages: list[PageRef] = field(default_factory=list)
    page: int = 0
    reason: str = ""
    technician_hint: str = ""
    mirror: bool = True
    blur: bool = False  # blur every camera image (technician screenshots)
    smooth: bool = True  # smooth the live picture when scaling it to the screen
    sitter_centred: bool = False


class Renderer:
    """Draws views onto surfaces; caches what is derived from one verdict."""

    def __init__(self, fonts: Fonts) -> None:
        self.fonts = fonts
        self._cache_key: tuple[int, bool] | None = None
        self._cache: dict[str, Any] = {}

    def draw(self, view: View, surface: pygame.Surface, *, strict: bool = False) -> Canvas:
        canvas = Canvas(surface, self.fonts, file=view.content.file, strict=strict)
        canvas.fill(BACKGROUND)
        draw = _SCREENS[view.state]
        draw(self, canvas, view)
        return canvas

    def verdict_images(self, verdict: Any, blur: bool) -> dict[str, Any]:
        key = (id(verdict), blur)
        if self._cache_key != key:
            self._cache = _derive_images(verdict, blur)
            self._cache_key = key
        return self._cache


def _derive_images(verdict: Any, blur: bool) -> dict[str, Any]:
    frame = verdict.frame
    face = verdict.face
    crop = images.square_crop(frame, face.detection.box)
    portrait = images.to_surface(images.stylise(crop))
    seen = images.to_surface(frame)
    chips = {name: images.to_surface(chip) for name, chip in face.chips.items()}
    if blur:
        portrait = images.blurred(portrait)
        seen = images.blurred(seen)
        chips = {name: images.blurred(chip, 4) for name, chip in chips.items()}
    return {"portrait": portrait, "seen": seen, "chips": chips}


# -- shared pieces ----------------------------------------------------------------

def _mirror(renderer: Renderer, canvas: Canvas, view: View, dim: int = 0) -> None:
    if view.frame is None:
        return
    surface = images.to_surface(view.frame)
    if view.mirror:
        surface = pygame.transform.flip(surface, True, False)
    if view.blur:
        surface = images.blurred(surface)
    canvas.blit(images.cover(surface, canvas.size, smooth=view.smooth), (0, 0), "mirror")
    if dim:
        canvas.shade(canvas.surface.get_rect(), dim, "mirror shade")


def _guide(canvas: Canvas, view: View) -> None:
    width, height = canvas.size
    guide_h = int(min(height * 0.62, width * 0.9))
    rect = pygame.Rect(0, 0, int(guide_h * 0.74), guide_h)
    rect.center = (width // 2, int(height * 0.47))
    color = OK if view.sitter_centred else WHITE
    canvas.ellipse(rect, color, max(2, canvas.px(5)), "face guide")


def _notice(canvas: Canvas, view: View, top: int = 0) -> None:
    if view.notice is None:
        return
    text = view.content.text(f"notice_{view.notice.value}")
    width, _ = canvas.size
    band = pygame.Rect(0, top, width, canvas.px(96))
    canvas.shade(band, 190, "notice band")
    column = Column(canvas, band.inflate(-canvas.px(80), -canvas.px(20)))
    column.text(text, 36, ACCENT, key=f"strings.notice_{view.notice.value}", bold=True, center=True)


def _footer(canvas: Canvas, view: View, key: str, counter: str = "") -> int:
    """Draw the button hint along the bottom; return the y where it starts."""
    width, height = canvas.size
    margin = canvas.px(64)
    text = view.content.text(key, language=view.next_language)
    if counter:
        text = f"{counter}  ·  {text}"
    probe = Column(canvas, pygame.Rect(margin, 0, width - 2 * margin, height))
    line_h = probe.measure(text, 24)
    top = height - margin - line_h
    column = Column(canvas, pygame.Rect(margin, top, width - 2 * margin, line_h))
    column.text(text, 24, GREY, key=f"strings.{key}")
    return top - canvas.px(16)


def _sources(canvas: Canvas, view: View, rect: pygame.Rect, items: Sequence[tuple[str, str]]) -> int:
    """Draw the sources block at the bottom of ``rect``; return its top y."""
    content = view.content
    probe = Column(canvas, rect)
    label_h = probe.measure(content.text("sources_label"), 20, bold=True)
    height = label_h + sum(probe.measure(text, 19) for _, text in items)
    top = max(rect.top, rect.bottom - height)
    column = Column(canvas, pygame.Rect(rect.left, top, rect.width, rect.bottom - top))
    column.text(content.text("sources_label"), 20, GREY, key="strings.sources_label", bold=True)
    for key, text in items:
        column.text(text, 19, DIM, key=key)
    return top


def _margins(canvas: Canvas) -> pygame.Rect:
    margin = canvas.px(64)
    return canvas.surface.get_rect().inflate(-2 * margin, -2 * margin)


# -- attract, prompt, countdown, capture --------------------------------------------

def draw_attract(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    _mirror(renderer, canvas, view)
    width, height = canvas.size
    area = _margins(canvas)
    band_h = int(height * (0.30 if canvas.portrait else 0.38))
    canvas.shade(pygame.Rect(0, height - band_h, width, band_h), 175, "title band")
    column = Column(canvas, pygame.Rect(area.left, height - band_h + canvas.px(36), area.width,
                                        band_h - canvas.px(36) - canvas.px(48)))
    column.text(content.text("title"), 96, WHITE, key="strings.title", bold=True)
    column.space(8)
    column.text(content.text("invitation"), 40, WHITE, key="strings.invitation")
    column.space(18)
    column.text(content.text("privacy"), 26, GREY, key="strings.privacy")


def draw_prompt(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    _mirror(renderer, canvas, view, dim=150)
    _guide(canvas, view)
    area = _margins(canvas)
    target = content.emotion(view.target or "neutral").upper()
    column = Column(canvas, pygame.Rect(area.left, int(canvas.size[1] * 0.28), area.width,
                                        int(canvas.size[1] * 0.6)))
    column.text(content.text("prompt"), 54, WHITE, key="strings.prompt", bold=True, center=True)
    column.space(16)
    column.text(target, 150, ACCENT, key=f"emotions.{view.target}", bold=True, center=True)
    column.space(24)
    column.text(content.text("prompt_hint"), 34, WHITE, key="strings.prompt_hint", center=True)
    _notice(canvas, view)


def draw_countdown(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    _mirror(renderer, canvas, view, dim=60)
    _guide(canvas, view)
    width, height = canvas.size
    canvas.label(str(view.countdown), 320, ACCENT, center=(width // 2, int(height * 0.47)),
                 bold=True, key="countdown", outline=True)
    area = _margins(canvas)
    target = content.emotion(view.target or "neutral").upper()
    band = pygame.Rect(0, 0, width, canvas.px(150))
    canvas.shade(band, 170, "target band")
    top = Column(canvas, band.inflate(-2 * area.left, -canvas.px(40)))
    top.text(target, 64, ACCENT, key=f"emotions.{view.target}", bold=True, center=True)
    bottom = Column(canvas, pygame.Rect(area.left, area.bottom - canvas.px(60), area.width, canvas.px(60)))
    canvas.shade(pygame.Rect(0, bottom.rect.top - canvas.px(14), width, canvas.px(88)), 150)
    bottom.text(content.text("countdown_hint"), 36, WHITE, key="strings.countdown_hint", center=True)
    _notice(canvas, view, top=band.bottom)


def draw_capture(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    _mirror(renderer, canvas, view)
    _guide(canvas, view)
    width, height = canvas.size
    canvas.frame_rect(canvas.surface.get_rect(), WHITE, canvas.px(18), "capture frame")
    area = _margins(canvas)
    bottom = Column(canvas, pygame.Rect(area.left, area.bottom - canvas.px(80), area.width, canvas.px(80)))
    canvas.shade(pygame.Rect(0, bottom.rect.top - canvas.px(14), width, canvas.px(108)), 150)
    bottom.text(content.text("capture"), 54, WHITE, key="strings.capture", bold=True, center=True)
    _notice(canvas, view)


# -- verdict -------------------------------------------------------------------------

def _percent(probability: float) -> int:
    return int(round(100 * float(probability)))


def _head_values(content: Content, head: Any, count: int = 3) -> str:
    order = np.argsort(np.asarray(head.probabilities))[::-1][:count]
    return ", ".join(f"{head.labels[i]} {content.text('percent', value=_percent(head.probabilities[i]))}"
                     for i in order)


def _page_number(view: View, page_id: str) -> int:
    for number, page in enumerate(view.pages, start=1):
        if page.id == page_id:
            return number
    return 0


def _emotion_bars(canvas: Canvas, column: Column, view: View, head: Any) -> None:
    content = view.content
    rows = list(zip(head.labels, (float(p) for p in head.probabilities), strict=True))
    row_h = canvas.px(40)
    rect = column.block(row_h * len(rows), "emotion bars")
    if rect is None:
        return
    seen, _ = head.top
    label_w = int(rect.width * 0.36)
    percent_w = canvas.px(90)
    bar_w = rect.width - label_w - percent_w - canvas.px(24)
    font = canvas.font(27)
    for index, (label, probability) in enumerate(rows):
        y = rect.top + index * row_h
        if label == seen:
            color = ACCENT
        elif label == view.target:
            color = WHITE
        else:
            color = GREY
        name = content.emotion(label)
        if font.size(name)[0] > label_w - canvas.px(8):
            canvas.overflow(f"emotions.{label}", font.size(name)[0], label_w)
        image = font.render(name, True, color)
        canvas.blit(image, (rect.left, y + (row_h - image.get_height()) // 2),
                    f"emotions.{label}")
        bar = pygame.Rect(rect.left + label_w, y + row_h // 5, bar_w, row_h - 2 * (row_h // 5))
        canvas.fill(BAR_BACKGROUND, bar, "bar")
        if probability > 0:
            canvas.fill(color, pygame.Rect(bar.left, bar.top, max(1, int(bar.width * probability)),
                                           bar.height), "bar")
        if label == view.target:
            canvas.frame_rect(bar, WHITE, max(1, canvas.px(3)), "asked bar")
        text = font.render(content.text("percent", value=_percent(probability)), True, color)
        canvas.blit(text, (rect.right - text.get_width(), y + (row_h - text.get_height()) // 2), "percent")


def draw_verdict(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    verdict = view.verdict
    derived = renderer.verdict_images(verdict, view.blur)
    area = _margins(canvas)
    footer_top = _footer(canvas, view, "hint_verdict")
    gap = canvas.px(56)
    if canvas.portrait:
        side = min(area.width, int(canvas.size[1] * 0.3))
        portrait_rect = pygame.Rect(0, area.top, side, side)
        portrait_rect.centerx = area.centerx
        text_rect = pygame.Rect(area.left, portrait_rect.bottom + gap, area.width,
                                footer_top - portrait_rect.bottom - gap)
    else:
        side = min(footer_top - area.top, int(area.width * 0.42))
        portrait_rect = pygame.Rect(area.left, area.top, side, side)
        text_rect = pygame.Rect(portrait_rect.right + gap, area.top,
                                area.right - portrait_rect.right - gap, footer_top - area.top)
    canvas.blit(images.contain(derived["portrait"], portrait_rect.size), portrait_rect.topleft, "portrait")

    column = Column(canvas, text_rect)
    column.text(content.text("verdict_title"), 30, GREY, key="strings.verdict_title", bold=True)
    column.space(6)
    emotion = verdict.heads.get("emotion")
    if emotion is not None:
        seen, probability = emotion.top
        line = content.text("verdict_line", asked=content.emotion(view.target or seen),
                            seen=content.emotion(seen), percent=_percent(probability))
        column.text(line, 44, WHITE, key="strings.verdict_line", bold=True)
        column.space(16)
        column.text(content.text("emotion_heading"), 24, GREY, key="strings.emotion_heading")
        _emotion_bars(canvas, column, view, emotion)
        column.space(16)

    age = verdict.heads.get("age")
    if age is not None and age.expected is not None:
        low, high = age.interval or (age.expected, age.expected)
        column.text(content.text("age_line", age=int(round(age.expected)), low=int(round(low)),
                                 high=int(round(high))), 32, WHITE, key="strings.age_line")
    gender = verdict.heads.get("gender")
    if gender is not None:
        label, probability = gender.top
        column.text(content.text("gender_line", label=content.gender_label(label),
                                 percent=_percent(probability)), 32, WHITE, key="strings.gender_line")
        column.text(content.text("gender_note"), 24, GREY, key="strings.gender_note")
    column.space(8)

    extras = [head for name, head in verdict.heads.items() if name not in CORE_HEADS]
    race = next((head for head in extras if head.name == "race"), None)
    if race is None:
        race_page = _page_number(view, RACE_PAGE)
        race_title = content.pages[RACE_PAGE].title
        column.text(content.text("race_line", page=race_page, title=race_title), 28, WHITE,
                    key="strings.race_line")
    for head in extras:
        column.text(content.text("extra_line", title=head.title, values=_head_values(content, head)),
                    28, WHITE, key="strings.extra_line")
    column.space(14)
    column.text(content.text("verdict_sources"), 19, DIM, key="strings.verdict_sources")


# -- explanation pages ---------------------------------------------------------------

def draw_explanations(renderer: Renderer, canvas: Canvas, view: View) -> None:
    if not view.pages:
        return
    page = view.pages[min(view.page, len(view.pages) - 1)]
    counter = view.content.text("page_counter", page=view.page + 1, pages=len(view.pages))
    footer_top = _footer(canvas, view, "hint_page", counter)
    if page.id == SAW_PAGE:
        _draw_saw(renderer, canvas, view, footer_top)
    elif page.extra is not None:
        _draw_extra(canvas, view, page.extra, footer_top)
    else:
        text_page = view.content.pages[page.id]
        key = f"pages.{page.id}"
        body = [(f"{key}.body[{i}]", text) for i, text in enumerate(text_page.body)]
        sources = [(f"{key}.sources[{i}]", text) for i, text in enumerate(text_page.sources)]
        _text_page(canvas, view, (f"{key}.title", text_page.title), body, sources, footer_top)


def _text_page(canvas: Canvas, view: View, title: tuple[str, str], body: Iterable[tuple[str, str]],
               sources: Sequence[tuple[str, str]], footer_top: int) -> None:
    area = _margins(canvas)
    bottom = pygame.Rect(area.left, area.top, area.width, footer_top - area.top)
    sources_top = _sources(canvas, view, bottom, sources)
    column = Column(canvas, pygame.Rect(area.left, area.top, area.width,
                                        sources_top - canvas.px(30) - area.top))
    column.text(title[1], 58, ACCENT, key=title[0], bold=True)
    column.space(24)
    column.texts(body, 33, WHITE, gap=18)


def _draw_extra(canvas: Canvas, view: View, head: ExtraHead, footer_top: int) -> None:
    content = view.content
    title = ("strings.extra_page_title", content.text("extra_page_title", title=head.title))
    body = [("strings.extra_page_intro", content.text("extra_page_intro", dataset=head.dataset)),
            (f"manifest {head.name}.training_data", head.training_data or "-")]
    sources = [("strings.extra_page_source", content.text("extra_page_source"))]
    if head.source:
        sources.append((f"manifest {head.name}.source", head.source))
    _text_page(canvas, view, title, body, sources, footer_top)


def _draw_saw(renderer: Renderer, canvas: Canvas, view: View, footer_top: int) -> None:
    content = view.content
    verdict = view.verdict
    area = _margins(canvas)
    region = pygame.Rect(area.left, area.top, area.width, footer_top - area.top)
    sources_top = _sources(canvas, view, region, [("strings.saw_sources", content.text("saw_sources"))])
    column = Column(canvas, pygame.Rect(area.left, area.top, area.width, sources_top - area.top))
    column.text(content.text("saw_title"), 58, ACCENT, key="strings.saw_title", bold=True)
    column.space(12)
    column.text(content.text("saw_intro"), 29, WHITE, key="strings.saw_intro")
    column.space(24)
    if verdict is None:
        return
    derived = renderer.verdict_images(verdict, view.blur)
    rest = pygame.Rect(area.left, column.y, area.width, sources_top - canvas.px(24) - column.y)
    if rest.height < canvas.px(120):
        canvas.overflow("strings.saw_intro", column.y - area.top + canvas.px(120), sources_top - area.top)
        return
    gap = canvas.px(48)
    if canvas.portrait:
        frame_rect = pygame.Rect(rest.left, rest.top, rest.width, int(rest.height * 0.5))
        chips_rect = pygame.Rect(rest.left, frame_rect.bottom + gap, rest.width,
                                 rest.bottom - frame_rect.bottom - gap)
    else:
        frame_rect = pygame.Rect(rest.left, rest.top, int(rest.width * 0.5), rest.height)
        chips_rect = pygame.Rect(frame_rect.right + gap, rest.top, rest.right - frame_rect.right - gap,
                                 rest.height)
    _draw_detection(canvas, view, derived["seen"], frame_rect)
    _draw_chips(canvas, view, derived["chips"], chips_rect)


def _draw_detection(canvas: Canvas, view: View, seen: pygame.Surface, rect: pygame.Rect) -> None:
    caption_h = canvas.px(80)
    picture_area = (rect.width, max(1, rect.height - caption_h))
    picture = images.contain(seen, picture_area)
    scale = picture.get_width() / seen.get_width()
    topleft = (rect.left, rect.top)
    canvas.blit(picture, topleft, "machine's frame")
    detection = view.verdict.face.detection
    x0, y0, x1, y1 = (float(v) * scale for v in detection.box)
    box = pygame.Rect(int(topleft[0] + x0), int(topleft[1] + y0), int(x1 - x0), int(y1 - y0))
    box = box.clip(pygame.Rect(topleft, picture.get_size()))
    canvas.frame_rect(box, ACCENT, max(2, canvas.px(4)), "detector box")
    for x, y in np.asarray(detection.keypoints, dtype=float):
        point = (int(topleft[0] + x * scale), int(topleft[1] + y * scale))
        if pygame.Rect(topleft, picture.get_size()).collidepoint(point):
            canvas.circle(point, max(2, canvas.px(7)), WARNING, "keypoint")
    caption = Column(canvas, pygame.Rect(rect.left, topleft[1] + picture.get_height() + canvas.px(10),
                                         rect.width, caption_h))
    caption.text(view.content.text("saw_detector_caption", score=_percent(detection.score)), 22, GREY,
                 key="strings.saw_detector_caption")


def _chip_title(view: View, name: str) -> str:
    if name in CORE_HEADS:
        return view.content.text(f"head_{name}")
    head = view.verdict.heads.get(name)
    return head.title if head is not None else name


def _draw_chips(canvas: Canvas, view: View, chips: dict[str, pygame.Surface], rect: pygame.Rect) -> None:
    if not chips:
        return
    per_row = min(3, len(chips))
    rows = (len(chips) + per_row - 1) // per_row
    gap = canvas.px(28)
    caption_h = canvas.px(84)
    side = min((rect.width - gap * (per_row - 1)) // per_row,
               (rect.height - rows * caption_h - gap * (rows - 1)) // rows)
    if side < canvas.px(64):
        canvas.overflow("strings.saw_chip_caption", rows * (canvas.px(64) + caption_h), rect.height)
        return
    for index, (name, chip) in enumerate(chips.items()):
        row, col = divmod(index, per_row)
        x = rect.left + col * (side + gap)
        y = rect.top + row * (side + caption_h + gap)
        canvas.blit(images.pixelated(chip, (side, side)), (x, y), f"chip {name}")
        size = f"{chip.get_width()}×{chip.get_height()}"
        caption = Column(canvas, pygame.Rect(x, y + side + canvas.px(8), side, caption_h - canvas.px(8)))
        caption.text(view.content.text("saw_chip_caption", title=_chip_title(view, name), size=size),
                     21, GREY, key="strings.saw_chip_caption")


# -- out of order -----------------------------------------------------------------------

def draw_out_of_order(renderer: Renderer, canvas: Canvas, view: View) -> None:
    content = view.content
    canvas.fill(BLACK)
    area = _margins(canvas)
    width, height = canvas.size
    parts = [part for part in (view.reason, view.technician_hint) if part]
    technician = " · ".join([content.text("technician_label"), *parts]) if parts else ""
    probe = Column(canvas, area)
    hint_h = probe.measure(technician, 20) if technician else 0
    column = Column(canvas, pygame.Rect(area.left, int(height * 0.3), area.width,
                                        area.bottom - hint_h - canvas.px(24) - int(height * 0.3)))
    column.text(content.text("out_of_order_title"), 88, WARNING, key="strings.out_of_order_title",
                bold=True, center=True)
    column.space(24)
    column.text(content.text("out_of_order_body"), 38, WHITE, key="strings.out_of_order_body",
                center=True)
    if technician:
        small = Column(canvas, pygame.Rect(area.left, area.bottom - hint_h, area.width, hint_h))
        small.text(technician, 20, DIM, key="technician hint")


_SCREENS = {
    State.ATTRACT: draw_attract,
    State.PROMPT: draw_prompt,
    State.COUNTDOWN: draw_countdown,
    State.CAPTURE: draw_capture,
    State.VERDICT: draw_verdict,
    State.EXPLANATIONS: draw_explanations,
    State.OUT_OF_ORDER: draw_out_of_order,
}


# -- checking that every screen fits -----------------------------------------------------

def sample_verdict(extra_heads: Sequence[ExtraHead] = ()) -> Any:
    """Return a verdict with made-up numbers and a plain gray picture, for layout checks only."""
    from expression_portrait.vision.types import Detection, FaceResult, HeadResult, Verdict

    def head(name, title, labels, task="classification", **extra):
        probabilities = np.full(len(labels), 1.0 / len(labels), np.float32)
        probabilities[0] += 0.5
        probabilities /= probabilities.sum()
        return HeadResult(name, title, task, tuple(labels), probabilities, "sample", **extra)

    heads = {
        "emotion": head("emotion", "Emotion", EMOTION_LABELS),
        "age": head("age", "Age", [str(a) for a in range(81)], task="age", expected=80.0,
                    interval=(0.0, 80.0)),
        "gender": head("gender", "Gender", ("female", "male")),
    }
    for extra in extra_heads:
        heads[extra.name] = head(extra.name, extra.title, extra.labels or ("label a", "label b"))
    frame = np.tile(np.linspace(40, 200, 640, dtype=np.uint8)[None, :, None], (360, 1, 3))
    detection = Detection(np.array([250, 80, 390, 260], np.float32),
                          np.array([[290, 150], [350, 150], [320, 185], [320, 220], [260, 160],
                                    [380, 160]], np.float32), 0.97)
    chips = {"emotion": np.full((64, 64), 128, np.uint8),
             "age": np.full((64, 64, 3), 128, np.uint8),
             "gender": np.full((32, 32, 3), 128, np.uint8)}
    face = FaceResult(detection, 1, heads, chips)
    return Verdict(heads, 12, frame, face)


def _longest(content: Content, labels: Iterable[str], fonts: Fonts) -> str:
    font = fonts.get(40, True)
    return max(labels, key=lambda label: font.size(content.emotion(label))[0])


def sample_views(content: Content, extra_heads: Sequence[ExtraHead] = (),
                 next_language: str = "") -> list[View]:
    """Return one view of every screen of ``content``, with its longest words filled in."""
    fonts = Fonts()
    verdict = sample_verdict(extra_heads)
    pages = session_pages(content, extra_heads)
    target = _longest(content, EMOTION_LABELS, fonts)
    frame = verdict.frame
    common = {"content": content, "next_language": next_language, "frame": frame,
              "target": target, "verdict": verdict, "pages": pages}
    views = [
        View(State.ATTRACT, **common),
        View(State.PROMPT, notice=max(Notice, key=lambda n: len(content.text(f"notice_{n.value}"))),
             **common),
        View(State.COUNTDOWN, countdown=3, notice=Notice.ONE_AT_A_TIME, **common),
        View(State.CAPTURE, **common),
        View(State.VERDICT, **common),
        View(State.OUT_OF_ORDER, reason="camera: no frame for 5 s.",
             technician_hint="Check the ribbon cable, then run expression-portrait status and selftest.",
             **common),
    ]
    views.extend(View(State.EXPLANATIONS, page=index, **common) for index in range(len(pages)))
    return views


def check_fits(content: Content, extra_heads: Sequence[ExtraHead] = (), *,
               sizes: Iterable[tuple[int, int]] = SUPPORTED_RESOLUTIONS,
               fonts: Fonts | None = None, next_language: str = "") -> None:
    """Draw every screen of ``content`` at each size; raise ContentError naming what does not fit."""
    from expression_portrait.errors import ContentError

    renderer = Renderer(fonts or Fonts())
    next_language = next_language or content.name
    for size in sizes:
        surface = pygame.Surface(size)
        for view in sample_views(content, extra_heads, next_language):
            canvas = renderer.draw(view, surface, strict=True)
            outside = canvas.outside()
            if outside:
                rect, what = outside[0]
                raise ContentError(
                    f"{content.file}: {what} is drawn outside a {size[0]}x{size[1]} screen at "
                    f"{tuple(rect)} on the {view.state.value} screen"
                )
