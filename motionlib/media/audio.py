"""A clip's audio track, decoded for measuring it (ingest/tempo.py): mono float32 blocks."""

from __future__ import annotations

from pathlib import Path

AUDIO_RATE = 22050


def audio_blocks(path: Path, start: float = 0.0, end: float | None = None, rate: int = AUDIO_RATE):
    """Yield (first block's time, blocks) - the clip's first audio track, mono float32 at
    ``rate``, from ``start`` to ``end`` seconds of the *video* stream's time (0 = its start); the
    time is seconds from ``start``. Returns None when the clip has no audio track."""
    import av

    from motionlib.media.video import open_input  # PyAV 19 (Python 3.12+) has no metadata_errors

    container = open_input(path)
    if not container.streams.audio:
        container.close()
        return None
    astream = container.streams.audio[0]
    v0 = 0.0
    if container.streams.video:
        vs = container.streams.video[0]
        if vs.start_time is not None and vs.time_base:
            v0 = float(vs.start_time * vs.time_base)
    want0 = start + v0
    want1 = None if end is None else end + v0
    if start > 0:
        try:
            container.seek(int(want0 / astream.time_base), stream=astream, backward=True)
        except Exception:
            pass

    def gen():
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        t_first = None
        emitted = 0
        try:
            for frame in container.decode(astream):
                if t_first is None:
                    t_first = frame.time if frame.time is not None else 0.0
                for rf in resampler.resample(frame):
                    x = rf.to_ndarray().reshape(-1)
                    # drop what lies before start; stop at end
                    t_here = t_first + emitted / rate
                    emitted += x.size
                    if t_here + x.size / rate <= want0:
                        continue
                    if t_here < want0:
                        x = x[int(round((want0 - t_here) * rate)) :]
                    if want1 is not None:
                        room = int(round((want1 - max(t_here, want0)) * rate))
                        if room <= 0:
                            return
                        x = x[:room]
                    yield x
            for rf in resampler.resample(None):
                yield rf.to_ndarray().reshape(-1)
        finally:
            container.close()

    return gen()


