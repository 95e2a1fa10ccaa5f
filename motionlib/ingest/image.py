"""Identity images: checked before decoding, EXIF orientation applied, the person's pose found.

Checks, in order (each a one-line InputError/MediaError):
* a readable file whose content is JPEG, PNG, WebP or BMP (judged by content, not the name);
* at most MAX_PIXELS pixels and MAX_SIDE a side, read from the header before any decoding, so a
  decompression bomb is refused without allocating it;
* it decodes completely (a truncated file is refused).
The pose comes from the same estimator as ingest's default, in still-image mode: MediaPipe Pose
(model complexity 1) where the legacy solutions are installed, people counted by finding a body,
painting it over and searching again (and faces by MediaPipe's face detector); else (Python 3.13+)
the Tasks PoseLandmarker with the cached pose model, which finds several people in one pass (faces
are not counted there: no face model is fetched). A group photo is refused unless one person is
chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from motionlib.core.errors import InputError, MediaError, NoPersonError

FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
MAX_PIXELS = 40_000_000
MAX_SIDE = 12_000
MIN_SIDE = 64
ESTIMATOR = "mediapipe-pose (static image)"
TASKS_ESTIMATOR = "mediapipe-tasks (static image)"
LOWER_BODY = ("left_knee", "right_knee", "left_ankle", "right_ankle")
VISIBLE = 0.5


@dataclass
class IdentityImage:
    image: np.ndarray  # RGB uint8, upright (EXIF orientation applied)
    format: str
    ext: str
    exif_rotated: bool


@dataclass
class IdentityPose:
    keypoints: np.ndarray  # [33, 2] pixels of the upright image
    confidence: np.ndarray  # [33]
    body: str  # "full" | "upper"
    faces: int | None  # None: not counted (the Tasks path has no face model)
    warnings: list[str] = field(default_factory=list)
    estimator: str = ESTIMATOR

    def to_json(self) -> dict:
        return {
            "keypoints": [[round(float(x), 3), round(float(y), 3)] for x, y in self.keypoints],
            "confidence": [round(float(c), 4) for c in self.confidence],
            "faces": self.faces,
        }


def load_image(path: Path) -> IdentityImage:
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not path.is_file():
        raise InputError(f"{path} is not a file")
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = None  # opening reads the header only; our own limit follows
        with Image.open(path) as probe:
            fmt = probe.format
            w, h = probe.size
    except UnidentifiedImageError:
        raise MediaError(f"{path.name} is not an image (JPEG, PNG, WebP or BMP)") from None
    except Image.DecompressionBombError:
        raise MediaError(f"{path.name} is too large to open safely") from None
    except OSError as err:
        raise MediaError(f"cannot read {path.name}: {err}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    if fmt not in FORMATS:
        raise MediaError(f"{path.name} is a {fmt} image; identities must be JPEG, PNG, WebP or BMP")
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise MediaError(
            f"{path.name} is {w}x{h} pixels; identities may have at most {MAX_PIXELS // 1_000_000} megapixels "
            f"and {MAX_SIDE} pixels a side (scale it down first)"
        )
    if min(w, h) < MIN_SIDE:
        raise MediaError(f"{path.name} is {w}x{h} pixels; identities need at least {MIN_SIDE} pixels a side")
    try:
        Image.MAX_IMAGE_PIXELS = MAX_PIXELS
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
            rotated = _orientation(im) not in (None, 1)
            rgb = np.asarray(upright.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise MediaError(f"{path.name} is damaged or truncated ({str(err).splitlines()[0][:100]})") from None
    except Image.DecompressionBombError:
        raise MediaError(f"{path.name} is too large to open safely") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old
    return IdentityImage(np.ascontiguousarray(rgb), fmt, FORMATS[fmt], bool(rotated))


def _orientation(im) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - unreadable EXIF means no orientation
        return None


def detect_pose(image: np.ndarray, name: str = "the image", person: int | None = None,
                estimator: str | None = None) -> IdentityPose:
    """The person's 33 MediaPipe landmarks in pixels; raises NoPersonError when the image shows
    nobody, and InputError when it shows several people and ``person`` (1 = leftmost) does not
    choose one. ``estimator``: mediapipe-pose or mediapipe-tasks (default: as ingest's)."""
    from motionlib.ingest.estimators import default_estimator, spec_for
    from motionlib.ingest.estimators.mediapipe import TASKS_NAME, _import_mediapipe, quiet_native_stderr

    estimator = estimator or default_estimator()
    if estimator not in ("mediapipe-pose", TASKS_NAME):
        raise InputError(f"{{estimator}} {estimator!r}: an identity's pose comes from mediapipe-pose or "
                         f"{TASKS_NAME}", params=["estimator"])
    spec = spec_for(estimator=estimator)  # fails here, in one line, without the legacy solutions or the model
    mp = _import_mediapipe()
    h, w = image.shape[:2]
    with quiet_native_stderr():
        if spec.name == TASKS_NAME:
            faces, label = None, TASKS_ESTIMATOR
            bodies = _bodies_tasks(mp, image, spec.settings["task_file"])
        else:
            with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6) as fd:
                faces, label = len(fd.process(image).detections or []), ESTIMATOR
            bodies = _bodies(mp, image)
    if not bodies:
        raise NoPersonError(f"no person found in {name}")
    people = max(len(bodies), faces or 0)
    if person is None and people > 1:
        where = ", ".join(f"{i} at x={int(b[0][SHOULDERS, 0].mean())}" for i, b in enumerate(bodies, 1))
        raise InputError(
            f"{name} shows {people} people" + (f" ({where}, numbered from the left)" if len(bodies) > 1 else "")
            + "; an identity is one person: choose one with {person} or crop the picture to one", params=["person"]
        )
    if person is not None and not 1 <= person <= len(bodies):
        raise InputError(f"{{person}} {person}: {name} shows {len(bodies)} "
                         f"{'person' if len(bodies) == 1 else 'people'}", params=["person"])
    xy, conf = bodies[(person or 1) - 1]
    from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK

    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h)
    seen = (conf >= VISIBLE) & inside
    warnings = []
    if people > 1:
        warnings.append(f"the picture shows {people} people; person {person} from the left is this identity "
                        "(the others stay in the picture, and diffusion backends may animate them too)")
    lower = [SK.index(n) for n in LOWER_BODY]
    body = "full" if seen[lower].all() else "upper"
    if body == "upper":
        warnings.append(
            "half-body identity: knees or ankles are not in the picture. It suits upper-body motions; "
            "with full-body motions the legs are placed by the torso's proportions"
        )
    core = [SK.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    if not seen[core[:2]].all():
        raise InputError(f"{name}: the person's shoulders are not both visible; use a front-facing picture")
    if faces == 0:
        warnings.append("no face found: face crops for rendering will come from the pose")
    return IdentityPose(xy, conf, body, faces, warnings, label)


SHOULDERS = [11, 12]  # MediaPipe Pose 33: left and right shoulder
MAX_BODIES = 6


def _bodies(mp, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every person MediaPipe Pose finds, left to right, as (landmarks [33, 2] px, visibility [33]).
    Pose finds one body per call, so each one found is painted over (its landmarks' box with a
    margin, in the picture's median colour) and the picture searched again; a later find counts
    only with both shoulders clearly visible, so the painted patch's edges raise no phantom."""
    h, w = image.shape[:2]
    work = image.copy()
    fill = np.median(image.reshape(-1, 3), axis=0).astype(image.dtype)
    found = []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                min_detection_confidence=0.5) as pose:
        for _ in range(MAX_BODIES):
            result = pose.process(work)
            if result.pose_landmarks is None:
                break
            lm = result.pose_landmarks.landmark
            xy = np.array([(p.x * w, p.y * h) for p in lm], np.float32)
            conf = np.array([p.visibility for p in lm], np.float32)
            if found and not (conf[SHOULDERS] >= VISIBLE).all():
                break
            found.append((xy, conf))
            pts = xy[conf >= 0.3] if (conf >= 0.3).sum() > 3 else xy
            torso = float(np.linalg.norm(xy[SHOULDERS].mean(0) - xy[[23, 24]].mean(0)))
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            mx, my = 0.25 * (x1 - x0) + 0.3 * torso, 0.15 * (y1 - y0) + 0.3 * torso
            work[int(max(0, y0 - my)):int(min(h, y1 + my)), int(max(0, x0 - mx)):int(min(w, x1 + mx))] = fill
    return sorted(found, key=lambda b: float(b[0][SHOULDERS, 0].mean()))


def _bodies_tasks(mp, image: np.ndarray, task_file: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every person the Tasks PoseLandmarker finds (several in one pass), left to right; as in
    ``_bodies``, one after the most visible counts only with both shoulders clearly visible.

    At detection confidence 0.5 its detector misses the second of two people side by side, and
    painting the first over (as ``_bodies`` does) makes it see one that is not there; at 0.3 it
    finds both, but its landmarks of the first move (a median 7 px on the 512-pixel astronaut, 0
    px at 0.5 against legacy Pose). So the bodies come from a pass at 0.5, and a pass at 0.3 adds
    the people it alone finds (shoulders more than half a torso from every body found at 0.5)."""
    from mediapipe.tasks.python import BaseOptions, vision

    from motionlib.core.errors import EstimatorError

    h, w = image.shape[:2]
    picture = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))

    def detect(confidence: float):
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=task_file), running_mode=vision.RunningMode.IMAGE,
            num_poses=MAX_BODIES, min_pose_detection_confidence=confidence,
        )
        try:
            landmarker = vision.PoseLandmarker.create_from_options(options)
        except Exception as err:
            raise EstimatorError(f"{task_file} is not a usable MediaPipe pose landmarker model ({err})") from None
        try:
            result = landmarker.detect(picture)
        finally:
            landmarker.close()
        return [(np.array([(p.x * w, p.y * h) for p in pts], np.float32),
                 np.array([p.visibility or 0.0 for p in pts], np.float32)) for pts in result.pose_landmarks or []]

    def apart(b, others) -> bool:
        mid = b[0][SHOULDERS].mean(0)
        return all(np.linalg.norm(mid - o[0][SHOULDERS].mean(0))
                   > 0.5 * np.linalg.norm(o[0][SHOULDERS].mean(0) - o[0][[23, 24]].mean(0)) for o in others)

    bodies = detect(0.5)
    bodies += [b for b in detect(0.3) if apart(b, bodies)]
    bodies.sort(key=lambda b: -float(b[1].mean()))
    found = [b for i, b in enumerate(bodies) if i == 0 or (b[1][SHOULDERS] >= VISIBLE).all()]
    return sorted(found, key=lambda b: float(b[0][SHOULDERS, 0].mean()))
