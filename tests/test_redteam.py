"""The import door under hostile files (scripts/redteam.py): every case is refused with one clear
error and the library unchanged, or stored as a version that loads and exports; none crashes."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _redteam():
    spec = importlib.util.spec_from_file_location("redteam", ROOT / "scripts" / "redteam.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hostile_imports_are_refused_cleanly_and_change_nothing():
    results = _redteam().run(verbose=False)
    for door, outcome in results.items():
        assert outcome["traceback"] == [], (door, outcome["traceback"])
        assert outcome["changed"] == [], (door, outcome["changed"])
        assert outcome["usable"] == ["good"], (door, outcome["usable"])
        assert len(outcome["refused"]) >= 9, door
