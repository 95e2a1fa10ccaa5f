"""Decoding real clips: rotation, real timestamps, clear errors for what is not a video."""

import numpy as np
import pytest

from conftest import read_frames, write_audio_only, write_clip
from motionlib.core.errors import InputError, MediaError
from motionlib.media import video


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_phone_rotation_gives_frames_as_a_person_sees_them(tmp_path, demo_frames, rotation):
    upright = demo_frames[:6]
    k = rotation // 90
    coded = [np.ascontiguousarray(np.rot90(f, -k)) for f in upright]  # what a phone sensor stores
    path = write_clip(tmp_path / f"rot{rotation}.mp4", coded, rotation=rotation)
    info = video.probe(path)
    assert info.rotation == rotation
    assert (info.width, info.height) == (upright[0].shape[1], upright[0].shape[0])
    frames = list(video.decode(info, max_size=10_000))
    assert frames[0].image.shape == upright[0].shape
    err = np.abs(frames[0].image.astype(int) - upright[0]).mean()
    assert err < 6, err  # only compression differences
    wrong = np.abs(np.rot90(frames[0].image, 2).astype(int) - upright[0]).mean() if k == 2 else 99
    assert err < wrong


def test_variable_frame_rate_keeps_true_timestamps(tmp_path, demo_frames):
    gaps = [1 / 60 if i % 3 else 1 / 10 for i in range(39)]
    times = np.concatenate([[0.0], np.cumsum(gaps)])
    path = write_clip(tmp_path / "vfr.mp4", demo_frames[:40], times=times)
    info = video.probe(path)
    frames = list(video.decode(info))
    assert np.allclose([f.time for f in frames], times, atol=1e-4)


def test_start_end_and_scaling(sample):
    info = video.probe(sample)
    assert (info.width, info.height, info.rotation) == (1768, 994, 0)
    frames = list(video.decode(info, max_size=320, start=1.0, end=2.0))
    assert len(frames) == 30
    assert frames[0].time == pytest.approx(1.0, abs=1e-3)
    assert max(frames[0].image.shape[:2]) == 320


def test_errors_are_one_clear_line(tmp_path, sample):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    audio = write_audio_only(tmp_path / "voice.m4a")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(sample.read_bytes()[: sample.stat().st_size // 2])
    cases = {
        tmp_path / "missing.mp4": "no such file",
        tmp_path: "is a directory",
        empty: "is empty",
        text: "not a readable video",
        audio: "only audio",
    }
    for path, words in cases.items():
        with pytest.raises((InputError, MediaError), match=words) as exc:
            video.probe(path)
        assert "\n" not in str(exc.value)
    with pytest.raises(MediaError, match="truncated|damaged|not a readable video"):
        info = video.probe(truncated)
        list(video.decode(info))


def test_single_image_is_not_a_video(tmp_path):
    import av

    img = tmp_path / "still.png"
    from PIL import Image

    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    with pytest.raises(MediaError, match="single image|not a readable video|no video"):
        info = video.probe(img)
        list(video.decode(info))
