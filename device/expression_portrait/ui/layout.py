"""Fonts, text wrapping and a canvas that knows where it drew.

Every screen is laid out in units of ``Canvas.unit``: one unit is one pixel on
a 1920x1080 screen (or on a 1080x1920 portrait screen), so the same layout code
serves every resolution. Text goes through ``Column``, which wraps it to the
width it has and reports text that runs past the bottom of its box: in strict
mode (tests and content checks) as a ContentError naming the language file and
key, otherwise clipped and logged once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pygame

from expression_portrait.errors import ContentError

log = logging.getLogger(__name__)

# DejaVu Sans from Debian's fonts-dejavu-core, when present; pygame's built-in font otherwise.
DEJAVU_FOLDERS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
DEJAVU_FILES = {False: "DejaVuSans.ttf", True: "DejaVuSans-Bold.ttf"}

WHITE = (245, 245, 240)
GREY = (170, 170, 165)
DIM = (110, 110, 105)
BLACK = (12, 12, 12)
ACCENT = (255, 196, 0)
WARNING = (255, 110, 80)
OK = (120, 220, 140)

LINE_SPACING = 1.22


class Fonts:
    """Loaded fonts by size and weight, from one TrueType family."""

    def __init__(self, font_path: Path | None = None) -> None:
        pygame.font.init()
        self.paths: dict[bool, Path | None] = {False: None, True: None}
        if font_path is not None:
            self.paths = {False: font_path, True: font_path}
        else:
            for folder in DEJAVU_FOLDERS:
                regular = folder / DEJAVU_FILES[False]
                if regular.is_file():
                    bold = folder / DEJAVU_FILES[True]
                    self.paths = {False: regular, True: bold if bold.is_file() else regular}
                    break
        self._cache: dict[tuple[int, bool], pygame.font.Font] = {}

    @property
    def name(self) -> str:
        path = self.paths[False]
        return path.name if path else "pygame default (freesansbold)"

    def get(self, size: int, bold: bool = False) -> pygame.font.Font:
        size = max(8, int(size))
        key = (size, bold)
        font = self._cache.get(key)
        if font is None:
            path = self.paths[bold]
            font = pygame.font.Font(str(path) if path else None, size)
            if bold and path == self.paths[False]:
                font.set_bold(True)
            self._cache[key] = font
        return font


@dataclass
class Overflow:
    key: str
    needed: int
    available: int


@dataclass
class Canvas:
    """A screen-sized surface that records every rectangle drawn on it."""

    surface: pygame.Surface
    fonts: Fonts
    file: str = ""  # the language file whose text is drawn, for error messages
    strict: bool = False
    drawn: list[tuple[pygame.Rect, str]] = field(default_factory=list)
    overflows: list[Overflow] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        return self.surface.get_size()

    @property
    def portrait(self) -> bool:
        width, height = self.size
        return height > width

    @property
    def unit(self) -> float:
        width, height = self.size
        if self.portrait:
            return min(width / 1080, height / 1920)
        return min(width / 1920, height / 1080)

    def px(self, value: float) -> int:
        return max(1, round(value * self.unit))

    def font(self, size: float, bold: bool = False) -> pygame.font.Font:
        return self.fonts.get(self.px(size), bold)

    def record(self, rect: pygame.Rect, what: str) -> None:
        self.drawn.append((pygame.Rect(rect), what))

    def outside(self) -> list[tuple[pygame.Rect, str]]:
        """Return what was drawn past the edges of the screen."""
        screen = self.surface.get_rect()
        return [(rect, what) for rect, what in self.drawn
                if rect.width > 0 and rect.height > 0 and not screen.contains(rect)]

    def overflow(self, key: str, needed: int, available: int) -> None:
        width, height = self.size
        if self.strict:
            raise ContentError(
                f"{self.file}: key {key} does not fit a {width}x{height} screen: it needs "
                f"{needed} px of height and has {available}; shorten the text"
            )
        if not any(o.key == key for o in self.overflows):
            log.warning("%s: key %s is cut off on a %dx%d screen (%d px needed, %d available)",
                        self.file, key, width, height, needed, available)
        self.overflows.append(Overflow(key, needed, available))

    # -- drawing ------------------------------------------------------------------

    def fill(self, color, rect: pygame.Rect | None = None, what: str = "fill") -> None:
        rect = pygame.Rect(rect) if rect is not None else self.surface.get_rect()
        self.surface.fill(color, rect)
        self.record(rect, what)

    def shade(self, rect: pygame.Rect, alpha: int, what: str = "shade") -> None:
        rect = pygame.Rect(rect).clip(self.surface.get_rect())
        keep = 255 - alpha  # multiplying every channel darkens in place, with no alpha surface
        self.surface.fill((keep, keep, keep), rect, special_flags=pygame.BLEND_RGB_MULT)
        self.record(rect, what)

    def blit(self, image: pygame.Surface, topleft: tuple[int, int], what: str) -> pygame.Rect:
        rect = self.surface.blit(image, topleft)
        self.record(pygame.Rect(topleft, image.get_size()), what)
        return rect

    def frame_rect(self, rect: pygame.Rect, color, width: int, what: str = "outline") -> None:
        pygame.draw.rect(self.surface, color, rect, width)
        self.record(pygame.Rect(rect), what)

    def ellipse(self, rect: pygame.Rect, color, width: int, what: str = "ellipse") -> None:
        pygame.draw.ellipse(self.surface, color, rect, width)
        self.record(pygame.Rect(rect), what)

    def circle(self, centre: tuple[int, int], radius: int, color, what: str = "point") -> None:
        pygame.draw.circle(self.surface, color, centre, radius)
        self.record(pygame.Rect(centre[0] - radius, centre[1] - radius, 2 * radius, 2 * radius), what)

    def label(self, text: str, size: float, color, *, topleft=None, center=None, midbottom=None,
              bold: bool = False, key: str = "text", outline: bool = False) -> pygame.Rect:
        """Draw one line of text; a line wider than the screen counts as overflow."""
        font = self.font(size, bold)
        image = font.render(text, True, color)
        rect = image.get_rect()
        if topleft is not None:
            rect.topleft = topleft
        elif center is not None:
            rect.center = center
        elif midbottom is not None:
            rect.midbottom = midbottom
        screen = self.surface.get_rect()
        if rect.width > screen.width:
            self.overflow(key, rect.width, screen.width)
            rect.width = screen.width
        if outline:
            shadow = font.render(text, True, BLACK)
            offset = max(2, self.px(4))
            for dx, dy in ((-offset, 0), (offset, 0), (0, -offset), (0, offset)):
                self.surface.blit(shadow, rect.move(dx, dy).clamp(screen))
        rect = rect.clamp(screen)
        self.surface.blit(image, rect, area=pygame.Rect(0, 0, rect.width, rect.height))
        self.record(rect, key)
        return rect


# Whitespace that may break a line: every Unicode space except the no-break ones
# (U+00A0, U+2007 figure space, U+202F narrow no-break space), which French puts
# before ":" ";" "?" "!" "%" and inside guillemets so they never start a line.
BREAKABLE_SPACE = re.compile(r"[^\S\u00a0\u2007\u202f]+")


def wrap(text: str, font: pygame.font.Font, width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` pixels.

    Lines break at ordinary spaces only, never at no-break spaces. Words longer
    than a line, such as web addresses, are broken between characters.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in BREAKABLE_SPACE.split(paragraph.strip()):
            if not word:
                continue
            candidate = f"{line} {word}" if line else word
            if font.size(candidate)[0] <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            while font.size(word)[0] > width:
                cut = len(word) - 1
                while cut > 1 and font.size(word[:cut])[0] > width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


class Column:
    """Text and blocks stacked top to bottom inside a rectangle."""

    def __init__(self, canvas: Canvas, rect: pygame.Rect) -> None:
        self.canvas = canvas
        self.rect = pygame.Rect(rect)
        self.y = self.rect.top

    @property
    def remaining(self) -> int:
        return self.rect.bottom - self.y

    def space(self, units: float) -> None:
        self.y += self.canvas.px(units)

    def measure(self, text: str, size: float, bold: bool = False) -> int:
        font = self.canvas.font(size, bold)
        lines = wrap(text, font, self.rect.width)
        return len(lines) * round(font.get_linesize() * LINE_SPACING)

    def text(self, text: str, size: float, color=WHITE, *, key: str, bold: bool = False,
             center: bool = False) -> None:
        font = self.canvas.font(size, bold)
        step = round(font.get_linesize() * LINE_SPACING)
        lines = wrap(text, font, self.rect.width)
        needed = len(lines) * step
        if needed > self.remaining:
            self.canvas.overflow(key, self.y + needed - self.rect.top, self.rect.height)
        for line in lines:
            if self.y + font.get_height() > self.rect.bottom:
                break
            image = font.render(line, True, color)
            x = self.rect.centerx - image.get_width() // 2 if center else self.rect.left
            self.canvas.blit(image, (x, self.y), key)
            self.y += step

    def texts(self, paragraphs: Iterable[tuple[str, str]], size: float, color=WHITE,
              gap: float = 14) -> None:
        for key, paragraph in paragraphs:
            self.text(paragraph, size, color, key=key)
            self.space(gap)

    def block(self, height: int, key: str) -> pygame.Rect | None:
        """Reserve ``height`` pixels for a drawing; None when they do not fit."""
        if height > self.remaining:
            self.canvas.overflow(key, self.y + height - self.rect.top, self.rect.height)
            return None
        rect = pygame.Rect(self.rect.left, self.y, self.rect.width, height)
        self.y += height
        return rect
