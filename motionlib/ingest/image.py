"""Identity images: checked before decoding, EXIF orientation applied, the person's pose found.

Checks, in order (each a one-line InputError/MediaError):
* a readable file whose content is JPEG, PNG, WebP or BMP (judged by content, not the name);
* at most MAX_PIXELS pixels and MAX_SIDE a side, read from the header before any decoding, so a
  decompression bomb is refused without allocating it;
* it decodes completely (a truncated file is refused).
The pose comes from the same estimator as ingest (MediaPipe Pose, model complexity 1) in still-image
mode; faces are counted with MediaPipe's face detector to tell a group photo from a portrait.
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
    faces: int
    warnings: list[str] = field(default_factory=list)

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


def detect_pose(image: np.ndarray, name: str = "the image") -> IdentityPose:
    """The person's 33 MediaPipe landmarks in pixels; raises NoPersonError / InputError when the
    image shows nobody or several people."""
    from motionlib.ingest.estimators.mediapipe import _import_mediapipe, quiet_native_stderr

    mp = _import_mediapipe()
    h, w = image.shape[:2]
    with quiet_native_stderr():
        with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.6) as fd:
            faces = fd.process(image).detections or []
        with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                    min_detection_confidence=0.5) as pose:
            result = pose.process(image)
    if len(faces) > 1:
        raise InputError(
            f"{name} shows {len(faces)} people; an identity image must show one person (crop it to one)"
        )
    if result.pose_landmarks is None:
        raise NoPersonError(f"no person found in {name}")
    lm = result.pose_landmarks.landmark
    xy = np.array([(p.x * w, p.y * h) for p in lm], np.float32)
    conf = np.array([p.visibility for p in lm], np.float32)
    from motionlib.core.skeleton import MEDIAPIPE_POSE_33 as SK

    inside = (xy[:, 0] >= 0) & (xy[:, 0] <= w) & (xy[:, 1] >= 0) & (xy[:, 1] <= h)
    seen = (conf >= VISIBLE) & inside
    warnings = []
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
    if not faces:
        warnings.append("no face found: face crops for rendering will come from the pose")
    return IdentityPose(xy, conf, body, len(faces), warnings)
