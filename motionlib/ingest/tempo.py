"""A clip's tempo: its audio track (media/audio.py) measured by processing/tempo.py over the
motion's span, else the motion's own periodicity."""

from __future__ import annotations

from pathlib import Path

from motionlib.processing import tempo


def from_audio(path: Path, start: float = 0.0, duration: float | None = None):
    """Tempo and beats of the clip's audio over [start, start + duration) seconds of its video
    stream's time (the motion's span: ``start`` is its source offset), beat times in the motion's
    time; or None and why not (see processing.tempo.from_audio)."""
    from motionlib.media.audio import audio_blocks

    try:
        blocks = audio_blocks(Path(path), start, None if duration is None else start + duration,
                              rate=tempo.AUDIO_RATE)
    except Exception:  # an unreadable audio track is no reason to fail: there is no tempo
        return None, "the audio track could not be decoded"
    return tempo.from_audio(blocks, duration)


def measure(m, path: Path | None = None, offset: float = 0.0) -> dict:
    """What a version stores as its ``tempo``: from the clip's audio at ``path`` (the motion's
    span: ``offset`` seconds of the video stream on) when it has a clear beat, else from the
    motion (processing.tempo.measure)."""
    return tempo.measure(m, None if path is None else from_audio(path, offset, m.duration))
