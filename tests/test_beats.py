"""Tempo and beats (processing.tempo): on clips with a known beat - a metronome muxed under real
frames of the sample clip, and a real motion looped and retimed to a known period - and the
edits that fit a motion to a beat (retime --bpm, loop --beats), stored with their lineage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from motionlib.library import Library
from motionlib.ingest import tempo as clip_tempo
from motionlib.processing import ops, tempo
from tests.conftest import (
    assert_one_line_error, copy_library, invoke, invoke_json, library_snapshot, schema_validator, write_clip,
)
from tests.test_ops import make_motion

RATE = 48000


def metronome(seconds: float, bpm: float = 120.0, first: float = 0.25, freq: float = 1000.0):
    """Clicks: 30 ms bursts of a ``freq`` Hz tone decaying over 8 ms, every 60/bpm s from
    ``first``; (mono float32 samples at RATE, the click times)."""
    n = int(seconds * RATE)
    x = np.zeros(n, np.float32)
    t = np.arange(int(0.03 * RATE)) / RATE
    burst = (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t / 0.008)).astype(np.float32)
    times = np.arange(first, seconds - 0.03, 60.0 / bpm)
    for c in times:
        i = int(round(c * RATE))
        x[i : i + burst.size] += burst[: n - i]
    return x, times


def write_with_audio(path: Path, frames, samples: np.ndarray, fps: int = 30) -> Path:
    """H.264 video of ``frames`` with mono ``samples`` muxed under it as AAC (what a phone
    recording of a dancer with music playing looks like to the decoder)."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast", "crf": "23"}
        a = out.add_stream("aac", rate=RATE)
        for img in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        for i in range(0, len(samples), 1024):
            f = av.AudioFrame.from_ndarray(samples[None, i : i + 1024], format="fltp", layout="mono")
            f.sample_rate = RATE
            f.pts = i
            for p in a.encode(f):
                out.mux(p)
        for p in a.encode():
            out.mux(p)
    return path


def beat_errors(beats, clicks) -> np.ndarray:
    """Each click's distance to the nearest beat, seconds (every click must have one)."""
    beats = np.asarray(beats)
    return np.array([np.min(np.abs(beats - c)) for c in clicks])


@pytest.fixture(scope="module")
def small_frames(demo_frames):
    return [f[::2, ::2].copy() for f in demo_frames]  # 442x248: the audio is what is measured


# ------------------------------------------------------------------------------------ audio
@pytest.mark.parametrize("bpm", [120, 90, 180, 143])
def test_audio_tempo_of_a_metronome_under_real_frames(tmp_path, small_frames, bpm):
    samples, clicks = metronome(4.0, bpm)
    clip = write_with_audio(tmp_path / f"metronome{bpm}.mp4", small_frames, samples)
    got, why = clip_tempo.from_audio(clip, 0.0, 4.0)
    assert got is not None, why
    errors = beat_errors(got.beats, clicks)
    print(f"metronome {bpm} BPM: measured {got.bpm:.3f} (error {got.bpm - bpm:+.3f} BPM), "
          f"beats off by at most {errors.max() * 1000:.1f} ms, confidence {got.confidence:.2f}")
    assert abs(got.bpm - bpm) <= 2, "180 must not read as 90 (octave), nor 90 as 180"
    assert got.source == "audio" and len(got.beats) == len(clicks)
    assert errors.max() <= 0.030
    assert got.confidence > 0.5


def test_audio_beats_are_in_the_motions_time(tmp_path, small_frames):
    # the motion starts 1.1 s into the clip (ingest --start 1.1): beats move with it
    samples, clicks = metronome(4.0, 120)
    clip = write_with_audio(tmp_path / "late.mp4", small_frames, samples)
    got, _ = clip_tempo.from_audio(clip, 1.1, 2.9)
    later = clicks[clicks >= 1.1] - 1.1
    assert abs(got.bpm - 120) <= 2 and len(got.beats) == len(later)
    assert beat_errors(got.beats, later).max() <= 0.030


def test_no_audio_beat_says_why(tmp_path, small_frames):
    silent = write_with_audio(tmp_path / "silent.mp4", small_frames[:60], np.zeros(2 * RATE, np.float32))
    assert clip_tempo.from_audio(silent, 0.0, 2.0) == (None, "the audio track is silent")
    none = write_clip(tmp_path / "none.mp4", small_frames[:30])
    assert clip_tempo.from_audio(none, 0.0, 1.0) == (None, "no audio track")
    tone = write_clip(tmp_path / "tone.mp4", small_frames[:60], audio=True)  # a steady 440 Hz: no onsets
    assert clip_tempo.from_audio(tone, 0.0, 2.0) == (None, "no clear beat in the audio")


# ----------------------------------------------------------------------------------- motion
@pytest.mark.parametrize("hz", [0.75, 1.0, 1.5])
def test_motion_tempo_of_a_synthetic_wave(hz):
    # a wrist waving at hz: two turns a cycle, so beats at 2 x hz; tracking noise 1 px
    m = make_motion(T=300, wave_hz=hz, wave_px=40, noise=1.0, seed=1)
    got = tempo.from_motion(m)
    assert got is not None and got.source == "motion"
    assert got.bpm == pytest.approx(120 * hz, rel=0.03)
    assert got.cycle == pytest.approx(1 / hz, rel=0.03)
    # beats at the turns (the wave's extremes: t = (k + 1/2) / (2 hz) - 1/(4 hz) ...), within a frame
    turns = (np.arange(0, 30) + 0.5) / (2 * hz)
    turns = turns[turns < m.duration]
    assert beat_errors(got.beats, turns[1:-1]).max() <= 1.5 / 30


def test_still_or_noisy_motion_has_no_tempo():
    assert tempo.from_motion(make_motion(T=300, wave_px=0, noise=1.0)) is None
    wander = make_motion(T=300, wave_px=0, noise=1.0)
    walk = np.cumsum(np.random.default_rng(3).normal(0, 3, (300, 2)), axis=0)  # a wrist wandering at random
    wander.keypoints[:, wander.skeleton.index("right_wrist")] += walk.astype(np.float32)
    assert tempo.from_motion(wander) is None
    with pytest.raises(Exception, match="no measurable tempo"):
        ops.retime(make_motion(T=300, wave_px=0, noise=1.0), bpm=120)


@pytest.mark.parametrize("case", ["one frame", "never seen", "5 fps", "10 fps, uneven", "frozen"])
def test_odd_motions_get_an_answer(case):
    fps = {"5 fps": 5.0, "10 fps, uneven": 10.0}.get(case, 30.0)
    m = make_motion(T=1 if case == "one frame" else 120, fps=fps, wave_hz=1.7, wave_px=40, noise=20.0, seed=4)
    if case == "never seen":
        m.keypoints[:] = np.nan
        m.confidence[:] = 0
    if case == "10 fps, uneven":
        ts = np.cumsum(np.random.default_rng(0).uniform(0.02, 0.18, m.frames))
        m = replace(m, timestamps=ts - ts[0], duration=float(ts[-1] - ts[0] + 0.1)).validate()
    if case == "frozen":
        m.keypoints[:] = m.keypoints[:1]
    got = tempo.measure(m)
    assert got["bpm"] is None or 60 <= got["bpm"] <= 200
    if case in ("one frame", "never seen", "5 fps", "frozen"):
        assert got["bpm"] is None and got["why"] == "no clear periodic movement"


def test_beats_always_move_forwards():
    # a period of 1.5 envelope samples over noise: a beat snapped back behind its predecessor
    # once sent the tracker round for ever (found by fuzzing 5-10 fps motions)
    for seed in range(50):
        env = np.random.default_rng(seed).random(60)
        beats, _ = tempo._track(env, 5.0, 0.3, 0.0, 12.0)
        assert np.all(np.diff(beats) > 0)


def _tile(m, n: int):
    ts = np.concatenate([m.timestamps + i * m.duration for i in range(n)])
    return replace(m, keypoints=np.tile(m.keypoints, (n, 1, 1)), confidence=np.tile(m.confidence, (n, 1)),
                   timestamps=ts, duration=m.duration * n, world=None, presence=None, attrs={}).validate()


@pytest.fixture(scope="module")
def jumping_jack(demo_library):
    """One jumping jack of the real sample clip (its first 3 s, looped), as a Motion."""
    with Library(demo_library[0]) as lib:
        first = ops.trim(lib.load("demo@1"), 0.0, 3.0).motion
    cut = ops.loop(first, min_length=0.8, max_length=2.0)
    assert cut.result["loops"], cut.result
    return cut.motion


@pytest.mark.parametrize("period", [1.0, 1.5, 0.75])
def test_motion_tempo_of_a_real_motion_retimed_to_a_known_period(jumping_jack, period):
    m = ops.retime(_tile(jumping_jack, 6), speed=jumping_jack.duration / period).motion
    got = tempo.from_motion(m)
    assert got is not None
    per_cycle = got.bpm * got.cycle / 60
    print(f"jumping jack every {period:.2f}s: cycle {got.cycle:.4f}s ({(got.cycle / period - 1) * 100:+.2f}%), "
          f"{got.bpm:.2f} BPM = {per_cycle:.2f} beats a cycle; expected {60 * round(per_cycle) / period:.2f} "
          f"({(got.bpm * period / 60 / round(per_cycle) - 1) * 100:+.2f}%)")
    assert got.cycle == pytest.approx(period, rel=0.03)
    assert round(per_cycle) == 2, "arms up, arms down: two turns a jump"
    assert got.bpm == pytest.approx(120 / period, rel=0.03)


def test_manifest_beats_are_bounded():
    t = tempo.Tempo(120.0, np.arange(60_000) * 0.5, 0.9, "audio")
    d = t.as_dict()
    assert d["beat_count"] == tempo.MAX_BEATS == len(d["beats"]) and d["beats_dropped"] == 10_000
    assert tempo.Tempo.from_dict(d).bpm == 120.0 and tempo.Tempo.from_dict({"bpm": None}) is None


# ------------------------------------------------------------------------------------ edits
def test_retime_bpm_and_loop_beats_on_a_motion():
    m = make_motion(T=300, wave_hz=1.0, wave_px=40, noise=1.0, seed=1)
    measured = tempo.from_motion(m)
    e = ops.retime(m, bpm=90)
    assert e.params["speed"] == pytest.approx(90 / measured.bpm, rel=1e-5)
    assert e.params["bpm"] == 90 and e.params["tempo"]["source"] == "motion"
    assert e.time_scale == pytest.approx(e.params["speed"]) and e.result["bpm"] == pytest.approx(90)
    assert tempo.from_motion(e.motion).bpm == pytest.approx(90, rel=0.03)
    assert e.tempo is not None, "a tempo measured by the edit travels to the child (none was stored)"
    for motion in (m, e.motion):
        used = tempo.from_motion(motion)
        lp = ops.loop(motion, beats=8)
        assert lp.result["duration"] == pytest.approx(8 * used.period, abs=1.01 / 30)
        assert lp.result["beats"] == pytest.approx(8, abs=0.1) and lp.result["loops"]
        assert lp.params["beats"] == 8 and lp.params["tempo"]["bpm"] == pytest.approx(used.bpm, abs=1e-3)
    # a stored tempo wins over measuring
    stored = replace(m, attrs={"tempo": {"bpm": 100.0, "source": "audio", "confidence": 0.9, "beats": [0.1]}})
    assert ops.retime(stored, bpm=50).params["speed"] == pytest.approx(0.5)
    assert ops.retime(stored, bpm=50).tempo is None, "the stored one is carried by the library"


@pytest.mark.parametrize("call, words", [
    (lambda m: ops.retime(m, bpm=0), "bpm"),
    (lambda m: ops.retime(m, bpm=float("nan")), "bpm"),
    (lambda m: ops.retime(m, bpm=100, speed=2), "not both"),
    (lambda m: ops.loop(m, beats=0), "beats"),
    (lambda m: ops.loop(m, beats=2, min_length=1.0), "not both"),
    (lambda m: ops.loop(m, beats=40), "ask for fewer"),
])
def test_bad_beat_edits_are_refused(call, words):
    with pytest.raises(Exception, match=words):
        call(make_motion(T=300, wave_hz=1.0, wave_px=40))


# ------------------------------------------------------------------------- through the library
@pytest.fixture(scope="module")
def metronome_library(tmp_path_factory, demo_frames):
    """A library holding a 4 s clip of the sample's real frames with a 120 BPM metronome under
    it (first click 0.25 s), ingested: (its directory, the ingest result)."""
    root = tmp_path_factory.mktemp("beats")
    samples, _ = metronome(4.0, 120)
    clip = write_with_audio(root / "metronome.mp4", demo_frames, samples)
    with Library(root / "lib") as lib:
        result = lib.ingest(clip, name="metro")
    return root / "lib", result


def test_ingest_stores_the_audio_tempo(metronome_library, tmp_path):
    lib, result = metronome_library
    _, clicks = metronome(4.0, 120)
    with Library(lib) as library:
        m = library.manifest(result.record)
    schema_validator("motion-manifest.schema.json").validate(m)
    t = m["tempo"]
    print(f"ingest: stored {t['bpm']} BPM from {t['source']} (error {t['bpm'] - 120:+.3f}), beats off by at most "
          f"{beat_errors(t['beats'], clicks).max() * 1000:.1f} ms; tempo took {result.stats['seconds_tempo']}s "
          f"of {result.stats['seconds_ingest']}s")
    assert t["source"] == "audio" and abs(t["bpm"] - 120) <= 2
    assert t["beat_count"] == len(t["beats"]) == len(clicks) and beat_errors(t["beats"], clicks).max() <= 0.030
    assert all(b == round(b, 3) for b in t["beats"])
    assert result.stats["seconds_tempo"] < 0.05 * result.stats["seconds_ingest"] + 0.2
    shown = invoke("show", "metro", library=lib)
    assert "tempo" in shown.stdout and "BPM from the audio" in shown.stdout
    assert invoke_json("show", "metro", library=lib)["tempo"]["bpm"] == t["bpm"]
    told = invoke_json("tempo", "metro", library=lib)
    assert told["stored"] is True and told["beats"] == t["beats"]
    again = invoke_json("tempo", "metro", "--measure", library=lib)  # from the kept source's audio
    assert again["stored"] is False and again["source"] == "audio" and again["bpm"] == t["bpm"]


def test_edits_carry_the_stored_tempo(metronome_library, tmp_path):
    lib = copy_library(metronome_library[0], tmp_path / "lib")
    before = invoke_json("tempo", "metro", library=lib)
    # a trim keeps the beats inside it, on its own clock; a retime scales them and the tempo
    trimmed = invoke_json("trim", "metro@1", "--start", "1", "--end", "3", library=lib)
    kept = invoke_json("tempo", trimmed["ref"], library=lib)
    expect = [round(b - 1, 3) for b in before["beats"] if 1 <= b < 3]
    np.testing.assert_allclose(kept["beats"], expect, atol=0.0015)
    assert kept["bpm"] == before["bpm"] and kept["carried_from"] == "metro@1" and kept["stored"]
    fast = invoke_json("retime", "metro@1", "--speed", "1.25", library=lib)
    scaled = invoke_json("tempo", fast["ref"], library=lib)
    assert scaled["bpm"] == pytest.approx(before["bpm"] * 1.25, abs=0.001)
    np.testing.assert_allclose(scaled["beats"], np.array(before["beats"]) / 1.25, atol=0.0015)
    with Library(lib) as library:
        schema_validator("motion-manifest.schema.json").validate(library.manifest(library.get(fast["ref"])))


def test_a_version_without_audio_gets_its_tempo_from_the_motion(tmp_path):
    from motionlib.exchange import export_npz

    export_npz(make_motion(T=300, wave_hz=1.0, wave_px=40, noise=1.0, seed=1), tmp_path / "wave.npz")
    export_npz(make_motion(T=300, wave_px=0, noise=1.0), tmp_path / "still.npz")
    lib = tmp_path / "lib"
    for name in ("wave", "still"):
        invoke_json("import", tmp_path / f"{name}.npz", "--format", "npz", "--name", name, library=lib)
    wave = invoke_json("tempo", "wave", library=lib)
    assert wave["stored"] and wave["source"] == "motion" and wave["bpm"] == pytest.approx(120, rel=0.03)
    still = invoke_json("tempo", "still", library=lib)
    assert still["stored"] and still["bpm"] is None and "no clear periodic movement" in still["why"]
    assert "none measurable" in invoke("show", "still", library=lib).stdout
    assert_one_line_error(invoke("tempo", "nope", library=lib), "no motion named 'nope'")


def test_retime_bpm_makes_the_stored_tempo_match(metronome_library, tmp_path):
    lib = copy_library(metronome_library[0], tmp_path / "lib")
    before = invoke_json("tempo", "metro", library=lib)
    out = invoke_json("retime", "metro", "--bpm", "100", library=lib)
    assert out["params"]["bpm"] == 100 and out["params"]["tempo"]["source"] == "audio"
    assert out["params"]["speed"] == pytest.approx(100 / before["bpm"], rel=1e-5)
    after = invoke_json("tempo", out["ref"], library=lib)
    assert after["bpm"] == pytest.approx(100, abs=0.01) and after["carried_from"] == "metro@1"
    scale = out["params"]["speed"]
    np.testing.assert_allclose(after["beats"], np.array(before["beats"]) / scale, atol=0.0015)
    with Library(lib) as library:
        m = library.manifest(library.get(out["ref"]))
    assert m["lineage"]["params"]["bpm"] == 100 and m["lineage"]["params"]["tempo"]["bpm"] == before["bpm"]
    schema_validator("motion-manifest.schema.json").validate(m)


def test_real_loop_imported_then_fitted_to_a_beat(jumping_jack, tmp_path):
    """The real jumping jack, looped to a known 1.2 s period and imported (no audio): the tempo
    comes from the motion, and retime --bpm / loop --beats fit it, recorded in the lineage."""
    from motionlib.exchange import export_npz

    period = 1.2
    m = ops.retime(_tile(jumping_jack, 8), speed=jumping_jack.duration / period).motion
    export_npz(m, tmp_path / "jj.npz")
    lib = tmp_path / "lib"
    invoke_json("import", tmp_path / "jj.npz", "--format", "npz", "--name", "jj", library=lib)
    stored = invoke_json("tempo", "jj", library=lib)
    assert stored["stored"] and stored["source"] == "motion"
    assert stored["bpm"] == pytest.approx(120 / period, rel=0.03) and stored["cycle"] == pytest.approx(period, rel=0.03)
    fitted = invoke_json("retime", "jj", "--bpm", "120", library=lib)
    assert fitted["params"]["tempo"]["source"] == "motion" and fitted["result"]["bpm"] == pytest.approx(120)
    assert invoke_json("tempo", fitted["ref"], library=lib)["bpm"] == pytest.approx(120, abs=0.01)
    remeasured = invoke_json("tempo", fitted["ref"], "--measure", library=lib)
    assert remeasured["stored"] is False and remeasured["bpm"] == pytest.approx(120, rel=0.03)
    looped = invoke_json("loop", fitted["ref"], "--beats", "8", library=lib)
    assert looped["params"]["beats"] == 8 and looped["params"]["tempo"]["bpm"] == pytest.approx(120, abs=0.01)
    assert looped["record"]["duration"] == pytest.approx(8 * 0.5, abs=2 / 30), "8 beats at 120 BPM, within 2 frames"
    assert looped["result"]["verdict"] in ("seamless", "small jump")
    printed = invoke("loop", fitted["ref"], "--beats", "4", library=lib)
    assert "at the motion tempo 120.0 BPM" in printed.stdout and "loops" in printed.stdout


@pytest.mark.parametrize("args, words", [
    (("retime", "jj", "--bpm", "0"), "--bpm"),
    (("retime", "jj", "--bpm", "-5"), "--bpm"),
    (("retime", "jj", "--bpm", "100", "--speed", "2"), "not both"),
    (("loop", "jj", "--beats", "0"), "--beats"),
    (("loop", "jj", "--beats", "4", "--min-length", "1"), "not both"),
    (("loop", "jj", "--beats", "100"), "ask for fewer --beats"),
    (("retime", "still", "--bpm", "120"), "no measurable tempo"),
    (("loop", "still", "--beats", "8"), "no measurable tempo"),
])
def test_beat_edit_errors_are_one_line_and_store_nothing(edit_library, args, words):
    lib = edit_library
    before = library_snapshot(lib)
    assert_one_line_error(invoke(*args, library=lib), words)
    assert library_snapshot(lib) == before


@pytest.fixture(scope="module")
def edit_library(tmp_path_factory) -> Path:
    """A library with ``jj`` (a motion with a tempo: a synthetic wave) and ``still`` (none)."""
    from motionlib.exchange import export_npz

    root = tmp_path_factory.mktemp("beat-errors")
    export_npz(make_motion(T=300, wave_hz=1.0, wave_px=40, noise=1.0, seed=1), root / "jj.npz")
    export_npz(make_motion(T=300, wave_px=0, noise=1.0), root / "still.npz")
    for name in ("jj", "still"):
        invoke_json("import", root / f"{name}.npz", "--format", "npz", "--name", name, library=root / "lib")
    return root / "lib"
