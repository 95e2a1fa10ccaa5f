"""Every door under hostile input (scripts/redteam.py): imports, identities, names and tags, queries,
campaign files, the flags of imports, edits and renders, and faults of the library's disk. Every
case is refused with one clear error and the library unchanged, or accepted and usable; none
crashes or hangs."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _redteam():
    spec = importlib.util.spec_from_file_location("redteam", ROOT / "scripts" / "redteam.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hostile_input_at_every_door_is_refused_cleanly_and_changes_nothing():
    results = _redteam().run(verbose=False)
    assert {"import npz", "import openpose-json", "identity add", "names (rename)", "query", "campaign",
            "flags (import)", "flags (edit)", "flags (render)", "faults"} <= set(results)
    for door, outcome in results.items():
        assert outcome["traceback"] == [], (door, outcome["traceback"])
        assert outcome["hang"] == [], (door, outcome["hang"])
        assert outcome["changed"] == [], (door, outcome["changed"])
        assert outcome["refused"], door
    for door in ("import npz", "import openpose-json"):
        assert results[door]["usable"] == ["good"], (door, results[door]["usable"])
        assert len(results[door]["refused"]) >= 9, door
