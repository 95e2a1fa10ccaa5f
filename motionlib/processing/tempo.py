"""Tempo and beats of a motion: from its clip's audio track, or from the motion's own periodicity.

Both read the same way (docs/edits.md, "Tempo and beats"):

1. an *envelope* that rises at each beat - from audio, the onset strength (the rises of the log
   energy in seven octave bands, summed, its slow trend removed); from motion, the body's
   slowness (the speed of the normalised pose, negated), so that beats fall where the movement
   turns or stops (the "kinematic beats" of dance analysis: speed minima);
2. its autocorrelation: the strongest peak at a lag of 0.3-2 s, and, for octave errors, the
   shortest lag that divides it (2, 3 or 4 times) whose peak is nearly as strong (at least
   ``OCTAVE_RATIO`` of it), so that a click every 0.33 s reads 180 BPM, not 90; lags over 1 s
   (under 60 BPM) are split in 2, 4 ... beats until the tempo lies in ``BPM_RANGE``. A motion
   whose pose repeats (the normalised pose's own autocorrelation peaks at a lag of 0.3-4 s)
   takes that lag as its ``cycle`` and splits it into the beats its slowness shows (1-4 turns a
   cycle): the cycle's longer lag measures the period finer;
3. beat times: the phase whose grid of that period gathers the most envelope, then each beat
   snapped to the envelope's peak within ``SNAP`` of a period of where the previous one predicts
   it (so a slowly drifting tempo is followed), refined below one envelope step; the audio tempo
   is the least-squares slope of beat time against beat number.

``confidence`` is a normalised autocorrelation at the period found - of the onset envelope
(audio), of the pose at its cycle or else of the slowness (motion): near 1 for a metronome or a
looped move, near 0 without periodicity. Below ``MIN_CONFIDENCE`` there is no measurable tempo.

numpy only (scipy.signal would cost ~1 s of import; librosa pulls numba and llvmlite): the audio
is decoded and resampled by PyAV in blocks, so an hour's track needs no more memory than its
envelope (172 values a second).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from motionlib.processing.signal import lowpass

BPM_RANGE = (60.0, 200.0)  # tempi reported; slower periodicities count their half-periods as beats
LAG_RANGE = (0.3, 2.0)  # seconds searched in the autocorrelation (200 down to 30 BPM)
OCTAVE_RATIO = 0.8  # a divisor's peak at least this share of the strongest wins (the faster tempo)
SNAP = 0.15  # a beat snaps to the envelope's peak within this share of a period of its prediction
MIN_CONFIDENCE = {"audio": 0.2, "motion": 0.3}
MOTION_CUTOFF = 6.0  # Hz: joint paths are low-passed before their speeds are taken
MOTION_RATE = 60.0  # Hz at most: the motion is resampled to its own rate, capped here
MIN_MOTION_RATE = 8.0  # Hz: below this a motion's turns are not sampled finely enough
TREND = 4.0  # s: the motion's signals lose their moving average over this span (drift is not rhythm)
CYCLE_RANGE = (0.3, 4.0)  # seconds searched for the pose's repeat
MIN_BEATS = 4  # a tempo needs at least this many periods in the clip
MAX_BEATS = 50_000  # beats stored in a manifest (4 h at 200 BPM); the rest are dropped, and said so

AUDIO_RATE = 22050  # Hz, mono, what the audio is resampled to
N_FFT = 512  # 23 ms window
HOP = 128  # 5.8 ms between envelope values (172 Hz)
SILENCE = 1e-4  # RMS (full scale 1): quieter tracks have no tempo (-80 dBFS)
BANDS = (0, 150, 300, 600, 1200, 2400, 4800, AUDIO_RATE / 2 + 1)  # Hz, the onset envelope's bands
ENERGY_FLOOR = 1e-8  # per sample of the window (-80 dB): the log energy's floor
MIN_ONSET = 1.0  # the envelope at a typical beat must reach this (a band's energy rising ~2.7x)


@dataclass
class Tempo:
    bpm: float
    beats: np.ndarray  # seconds of the motion's time, increasing
    confidence: float  # normalised autocorrelation at the beat period, 0-1
    source: str  # "audio" | "motion"
    cycle: float | None = None  # motion: seconds after which the pose repeats (a whole number of beats)
    extra: dict = field(default_factory=dict)  # kept as is (carried_from, beats_dropped)

    @property
    def period(self) -> float:
        return 60.0 / self.bpm

    def as_dict(self) -> dict:
        beats = [round(float(b), 3) for b in self.beats[:MAX_BEATS]]
        out = {"bpm": round(float(self.bpm), 3), "period": round(self.period, 5), "source": self.source,
               "confidence": round(float(self.confidence), 3), "beat_count": len(beats), "beats": beats}
        if self.cycle is not None:
            out["cycle"] = round(float(self.cycle), 4)
        if len(self.beats) > MAX_BEATS:
            out["beats_dropped"] = int(len(self.beats) - MAX_BEATS)
        return {**out, **self.extra}

    def summary(self) -> dict:
        """What an edit records of the tempo it used (no beat list)."""
        return {"bpm": round(float(self.bpm), 3), "source": self.source, "confidence": round(float(self.confidence), 3)}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Tempo | None":
        if not d or not d.get("bpm"):
            return None
        known = {"bpm", "period", "source", "confidence", "beat_count", "beats", "cycle", "beats_dropped"}
        return cls(float(d["bpm"]), np.asarray(d.get("beats") or [], np.float64), float(d.get("confidence") or 0.0),
                   str(d.get("source")), d.get("cycle"), {k: v for k, v in d.items() if k not in known})


# ------------------------------------------------------------------------------------ shared core
def _acf(env: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised (biased) autocorrelation of ``env`` up to ``max_lag`` samples; of a [N, D]
    signal, its channels' autocorrelations summed (the D-dimensional signal's)."""
    x = env - env.mean(axis=0)
    n = len(x)
    size = 1 << int(math.ceil(math.log2(2 * n)))
    if x.ndim == 1:
        x = x[:, None]
    r = np.zeros(max_lag + 1)
    for c in range(0, x.shape[1], 8):  # a few channels at a time: an hour's pose stays small
        f = np.fft.rfft(x[:, c : c + 8], size, axis=0)
        r += np.fft.irfft(f.real**2 + f.imag**2, size, axis=0)[: max_lag + 1].sum(axis=1)
    return r / r[0] if r[0] > 0 else np.zeros_like(r)


def _peak(r: np.ndarray, k: int) -> tuple[float, float]:
    """Parabolic refinement of a local maximum at ``k``: (lag, value)."""
    if 0 < k < len(r) - 1:
        a, b, c = r[k - 1], r[k], r[k + 1]
        den = a - 2 * b + c
        if den < 0:
            d = 0.5 * (a - c) / den
            return k + d, b - 0.25 * (a - c) * d
    return float(k), float(r[k])


def _period(env: np.ndarray, fs: float) -> tuple[float, float, int] | None:
    """(the envelope's period in seconds, its autocorrelation there, the beats in one period: 1,
    or 2, 4 ... when the period is slower than ``BPM_RANGE``) at ``fs`` Hz, or None."""
    n = len(env)
    lo = max(2, int(LAG_RANGE[0] * fs))
    hi = min(int(LAG_RANGE[1] * fs) + 1, n // 2)  # at least two periods in view
    if hi <= lo + 2 or not np.isfinite(env).all() or np.ptp(env) <= 0:
        return None
    r = _acf(env, hi + 1)
    k = np.arange(lo, hi)
    peaks = k[(r[k] > r[k - 1]) & (r[k] >= r[k + 1]) & (r[k] > 0)]
    if not peaks.size:
        return None
    best = int(peaks[np.argmax(r[peaks])])
    lag, value = _peak(r, best)
    # octave errors: a shorter lag that divides the best one, nearly as periodic, is the beat
    for div in (4, 3, 2):
        want = lag / div
        if want < lo:
            continue
        near = peaks[np.abs(peaks - want) <= max(1.5, 0.05 * want)]
        if near.size:
            cand = int(near[np.argmax(r[near])])
            c_lag, c_val = _peak(r, cand)
            if c_val >= OCTAVE_RATIO * value:
                lag, value = c_lag, c_val
                break
    period = lag / fs
    per = 1
    while 60.0 * per / period < BPM_RANGE[0]:
        per *= 2
    return period, float(np.clip(value, 0.0, 1.0)), per


def _track(env: np.ndarray, fs: float, period: float, t0: float, duration: float,
           per: int = 1) -> tuple[np.ndarray, float]:
    """Beat times (seconds, ``t0`` = the envelope's first sample) and the fitted beat period:
    the envelope's peaks a ``period`` apart, each split into ``per`` beats."""
    p = period * fs  # samples
    n = len(env)
    # phase: the grid offset (0..p) whose points gather the most envelope
    phases = np.arange(int(math.ceil(p)))
    grid = np.arange(0, n, p)
    idx = np.rint(phases[:, None] + grid[None, :]).astype(np.int64)
    ok = idx < n
    score = np.where(ok, env[np.minimum(idx, n - 1)], 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
    pos = float(phases[int(np.argmax(score))])
    half = max(1, int(round(SNAP * p)))
    floor = float(np.median(env))
    beats = []
    while pos < n:
        a, b = max(0, int(round(pos)) - half), min(n, int(round(pos)) + half + 1)
        if b - a >= 1:
            k = a + int(np.argmax(env[a:b]))
            snapped = _peak(env, k)[0]
            if env[k] > floor and (not beats or snapped > beats[-1] + 0.5 * p):  # always forwards
                pos = snapped
        beats.append(pos)
        pos += p
    t = t0 + np.asarray(beats) / fs
    if per > 1 and len(t):  # the beats between the peaks, evenly spaced (and around the ends)
        t = np.concatenate([[t[0] - period], t, [t[-1] + period]])
        steps = np.diff(t)[:, None] * (np.arange(per) / per)[None, :]
        t = np.append((t[:-1, None] + steps).reshape(-1), t[-1])
    t = t[(t >= -1e-9) & (t < duration)]
    fitted = period / per
    if len(t) >= 3:
        i = np.arange(len(t))
        slope = float(np.polyfit(i, t, 1)[0])
        if abs(slope - fitted) < 0.1 * fitted:
            fitted = slope
    return np.maximum(t, 0.0), fitted


def _result(env: np.ndarray, fs: float, t0: float, duration: float, source: str,
            found: tuple[float, float, int] | None = None) -> Tempo | None:
    got = found or _period(env, fs)
    if got is None:
        return None
    period, conf, per = got
    if conf < MIN_CONFIDENCE[source] or duration < MIN_BEATS * period / per:
        return None
    beats, fitted = _track(env, fs, period, t0, duration, per)
    if len(beats) < MIN_BEATS:
        return None
    return Tempo(60.0 / fitted, beats, conf, source)


# ------------------------------------------------------------------------------------------ audio
def onset_envelope(samples, rate: int = AUDIO_RATE) -> tuple[np.ndarray, float]:
    """Onset strength of mono ``samples`` (an array, or an iterable of blocks): the rises of the
    log energy in BANDS (octaves), summed - a click or a drum hit raises its band's energy many
    times over, where steady noise moves a band's summed energy little - less its moving
    average over 0.4 s, half-wave rectified. Returns (envelope at rate/HOP Hz, the time of its
    first value in seconds from the first sample); each value is placed three quarters into its
    window, where a sharp onset raises it most (measured on clicks: beat times within 2 ms)."""
    blocks = [samples] if isinstance(samples, np.ndarray) else samples
    window = np.hanning(N_FFT).astype(np.float32)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / rate)
    band = np.searchsorted(np.asarray(BANDS[1:-1]), freqs, side="right")  # each bin's band
    member = (band[:, None] == np.arange(len(BANDS) - 1)[None, :]).astype(np.float32)  # [bins, bands]
    buf = np.zeros(0, np.float32)
    prev = None
    out: list[np.ndarray] = []
    power = 0.0
    count = 0
    for block in _batched(blocks):
        block = np.asarray(block, np.float32).reshape(-1)
        power += float(np.dot(block, block))
        count += block.size
        buf = np.concatenate([buf, block])
        n = (len(buf) - N_FFT) // HOP + 1
        if n <= 0:
            continue
        frames = np.lib.stride_tricks.sliding_window_view(buf, N_FFT)[::HOP][:n]
        spec = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        level = np.log(spec @ member + ENERGY_FLOOR * N_FFT)
        if prev is None:
            prev = level[:1]
        out.append(np.maximum(np.diff(np.concatenate([prev, level]), axis=0), 0.0).sum(axis=1))
        prev = level[-1:]
        buf = buf[n * HOP :]
    fs = rate / HOP
    if not out or count == 0 or math.sqrt(power / count) < SILENCE:
        return np.zeros(0), 0.0
    env = np.concatenate(out)
    w = max(3, int(0.4 * fs) | 1)
    trend = np.convolve(np.pad(env, w // 2, mode="edge"), np.ones(w) / w, mode="valid")
    env = np.maximum(env - trend, 0.0)
    return env, (N_FFT * 0.75) / rate


def _batched(blocks, size: int = 1 << 16):
    """The blocks joined into pieces of at least ``size`` samples (a codec's frames are ~1,000
    samples: one numpy pass per frame would cost more than the arithmetic)."""
    held: list[np.ndarray] = []
    count = 0
    for block in blocks:
        block = np.asarray(block, np.float32).reshape(-1)
        held.append(block)
        count += block.size
        if count >= size:
            yield np.concatenate(held)
            held, count = [], 0
    if held:
        yield np.concatenate(held)


def from_audio(blocks, duration: float | None = None) -> tuple[Tempo | None, str]:
    """Tempo and beats of an audio track given as ``blocks`` (mono float32 at AUDIO_RATE, as
    media.audio.audio_blocks yields them over the motion's span; None: no audio track), beat
    times in the motion's time; or None and why not (no audio track, silent, undecodable, no
    clear beat). ingest/tempo.py reads a clip's track and calls this."""
    if blocks is None:
        return None, "no audio track"
    try:
        env, t0 = onset_envelope(blocks)
    except Exception:  # an unreadable audio track is no reason to fail: there is no tempo
        return None, "the audio track could not be decoded"
    if not env.size:
        return None, "the audio track is silent"
    fs = AUDIO_RATE / HOP
    span = duration if duration is not None else len(env) / fs
    got = _result(env, fs, t0, span, "audio")
    if got is not None:
        # the beats must be onsets: a steady tone's envelope is periodic too (the codec's frames)
        at = np.clip(np.rint((got.beats - t0) * fs).astype(int), 0, len(env) - 1)
        strength = np.maximum(env[at], env[np.minimum(at + 1, len(env) - 1)])
        if float(np.median(strength)) < MIN_ONSET:
            got = None
    return (got, "") if got is not None else (None, "no clear beat in the audio")


def measure(m, audio: tuple[Tempo | None, str] | None = None) -> dict:
    """What a version stores as its ``tempo``: from its clip's audio (``audio``: what
    ``from_audio`` found over the motion's span, or None when there is no clip) when it has a
    clear beat, else from the motion; when neither has one, ``bpm`` null and ``why``."""
    why = ""
    if audio is not None:
        got, why = audio
        if got is not None:
            return got.as_dict()
    try:
        got = from_motion(m)
    except Exception as err:  # a tempo is a measurement beside the motion: never a reason to lose it
        return {"bpm": None, "source": None,
                "why": (why + "; " if why else "") + f"the motion's tempo could not be measured ({type(err).__name__})"}
    if got is not None:
        return {**got.as_dict(), **({"audio": why} if why else {})}
    return {"bpm": None, "source": None, "why": (why + "; " if why else "") + "no clear periodic movement"}


# ----------------------------------------------------------------------------------------- motion
def motion_envelope(m) -> tuple[np.ndarray, float, np.ndarray] | None:
    """(slowness envelope, its rate in Hz, normalised pose [N, D]) on a uniform grid from t=0, or
    None when the body is not seen well enough. The core joints (skeleton.CORE_BODY_NAMES) below 0.5
    confidence count as unknown and are interpolated; positions are taken from the hip centre and
    divided by the median torso length, low-passed at MOTION_CUTOFF; both signals lose their
    moving average over TREND s."""
    from motionlib.processing.cleaning import body_centre_and_scale

    ts = m.timestamps
    if m.frames < 8 or m.duration <= 0:
        return None
    fs = float(min(m.fps, MOTION_RATE))
    if fs < MIN_MOTION_RATE:
        return None
    core = list(m.skeleton.core)
    kp = m.keypoints[:, core].astype(np.float64)
    kp[m.confidence[:, core] < 0.5] = np.nan
    centre, scale = body_centre_and_scale(m.keypoints, m.skeleton)
    known = np.isfinite(scale) & (scale > 0) & np.isfinite(centre).all(axis=1)
    if known.sum() < 0.5 * m.frames:
        return None
    torso = float(np.median(scale[known]))
    # positions relative to the hips (travel is not rhythm), in torso lengths
    grid = np.arange(0.0, m.duration, 1.0 / fs)
    idx = np.flatnonzero(known)
    root = np.stack([np.interp(grid, ts[idx], centre[idx, k]) for k in range(2)], axis=1)
    cols = []
    for j in range(kp.shape[1]):
        ok = np.isfinite(kp[:, j]).all(axis=1)
        if ok.sum() < 0.5 * m.frames:
            continue
        for k in range(2):
            cols.append(((np.interp(grid, ts[ok], kp[ok, j, k]) - root[:, k]) / torso).astype(np.float32))
    if not cols or len(grid) < 8:
        return None
    pose = np.stack(cols, axis=1)
    del cols, kp
    if fs > 2 * MOTION_CUTOFF:  # tracking jitter would otherwise swamp the speeds of still joints
        pose = lowpass(pose, fs, MOTION_CUTOFF).astype(np.float32)
    # the body's speed in pose space (all coordinates at once): the joints that move dominate,
    # where a sum of each joint's speed would add up the jitter of the still ones
    speed = np.sqrt((np.gradient(pose, axis=0) ** 2).sum(axis=1, dtype=np.float64)) * fs
    return _detrend(-speed, fs), fs, _detrend(pose, fs)


def _detrend(x: np.ndarray, fs: float) -> np.ndarray:
    """``x`` less its moving average over TREND seconds (along axis 0; edges reflected)."""
    w = max(3, int(TREND * fs) | 1)
    h = w // 2
    if len(x) <= h + 1:
        return x - x.mean(axis=0)
    ext = np.concatenate([x[h:0:-1], x, x[-2 : -h - 2 : -1]])
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), ext]), axis=0)
    return x - (c[w:] - c[:-w]) / w


def from_motion(m) -> Tempo | None:
    """Tempo and beats from the motion itself. When the pose repeats (its autocorrelation's
    strongest peak at a lag of 0.3-4 s, at least MIN_CONFIDENCE), that lag is the ``cycle`` and
    the beats are the cycle split in k (4, 3 or 2: the most whose slowness peaks are nearly as
    periodic as the whole cycle's, each at least 0.3 s; else 1); otherwise the slowness envelope
    alone gives the period. The beats are the envelope's peaks (the movement's turns and stops)."""
    got = motion_envelope(m)
    if got is None:
        return None
    env, fs, pose = got
    n = len(env)
    cyc = _strongest(_acf(pose, n // 2), fs, CYCLE_RANGE)
    if cyc is None or cyc[1] < MIN_CONFIDENCE["motion"]:
        return _result(env, fs, 0.0, m.duration, "motion")
    lag, conf = cyc
    r = _acf(env, n // 2)
    base = max(_near(r, lag), 0.0)
    k = 1
    for div in (4, 3, 2):
        if lag / div >= LAG_RANGE[0] * fs and _near(r, lag / div) > 0 and _near(r, lag / div) >= OCTAVE_RATIO * base:
            k = div
            break
    period = lag / k / fs
    per = 1
    while 60.0 * per / period < BPM_RANGE[0]:
        per *= 2
    if m.duration < MIN_BEATS * period / per:
        return None
    beats, _ = _track(env, fs, period, 0.0, m.duration, per)
    if len(beats) < MIN_BEATS:
        return None
    return Tempo(60.0 * per / period, beats, conf, "motion", cycle=lag / fs)


def _strongest(r: np.ndarray, fs: float, span: tuple[float, float]) -> tuple[float, float] | None:
    """The highest local maximum of the autocorrelation ``r`` at lags within ``span`` seconds:
    (lag in samples, refined, value), or None."""
    lo, hi = max(2, int(span[0] * fs)), min(int(span[1] * fs) + 1, len(r) - 1)
    if hi <= lo:
        return None
    k = np.arange(lo, hi)
    peaks = k[(r[k] > r[k - 1]) & (r[k] >= r[k + 1]) & (r[k] > 0)]
    if not peaks.size:
        return None
    return _peak(r, int(peaks[np.argmax(r[peaks])]))


def _near(r: np.ndarray, lag: float, tol: float = 0.08) -> float:
    """The autocorrelation's highest value within ``tol`` of ``lag`` (samples)."""
    lo, hi = max(1, int(lag * (1 - tol))), min(len(r) - 1, int(math.ceil(lag * (1 + tol))))
    return float(r[lo : hi + 1].max()) if hi >= lo else -1.0


# ---------------------------------------------------------------------------------------- helpers
def stored_of(m) -> dict | None:
    """The ``tempo`` stored with the version a Motion was loaded from (the library puts its
    manifest in ``attrs``), or given as ``attrs['tempo']``."""
    if "tempo" in m.attrs:
        return m.attrs["tempo"]
    return (m.attrs.get("manifest") or {}).get("tempo")


def stored_or_measured(m, instead: str | None = None) -> Tempo:
    """The tempo an edit fits to: the one stored with the version (``stored_of``), else
    measured from the motion. Raises InputError when there is none (naming
    the parameter to use ``instead``)."""
    from motionlib.core.errors import InputError

    stored = stored_of(m)
    got = Tempo.from_dict(stored) if isinstance(stored, dict) else None
    if got is None:
        got = from_motion(m)
    if got is None:
        why = stored.get("why") if isinstance(stored, dict) and stored.get("why") else "no clear periodic movement"
        raise InputError(f"no measurable tempo in this motion ({why})"
                         + (f"; give {{{instead}}} instead" if instead else ""),
                         params=[instead] if instead else ())
    return got
