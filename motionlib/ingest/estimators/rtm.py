"""DWPose and RTMW: a person detector, then a whole-body pose model on the chosen person's box,
both ONNX models run by onnxruntime. They store COCO-WholeBody's 133 points (``coco_wholebody_133``)
natively: the skeleton the ControlNet-openpose, UniAnimate and MimicMotion annotators read.

The pre- and post-processing is rtmlib's (``YOLOX``, ``RTMPose``; rtmlib 0.0.16), written out here
rather than importing rtmlib, because rtmlib (a) requires both ``opencv-python`` and
``opencv-contrib-python``, which overwrite each other's ``cv2`` (mediapipe brings the contrib one),
(b) downloads a model whenever a path does not exist and prints to stdout on load (``--json``
output), (c) runs the pose model on every detected person where motionlib follows one, and (d)
keeps the detector's scores to itself. What is the same:

* detector: the frame as BGR, resized to fit the model's input with its aspect kept, placed at the
  top left on grey 114, float 0-255 (YOLOX and mmdet's detectors take BGR, unnormalised). Two
  output forms: YOLOX without NMS (``[1, N, 5 + classes]``: grid offsets, log sizes, objectness,
  class scores; DWPose's ``yolox_l.onnx``), decoded on the 8/16/32 strides and put through NMS
  (IoU 0.45) on the person class; or an end-to-end export with NMS (mmdeploy's ``dets [1, N, 5]``
  and ``labels [1, N]``; rtmlib's YOLOX-m Human-Art). A box counts from ``min_detection_confidence``.
* pose: the box grown by 1.25 and widened or heightened to the model's aspect, cut out by an affine
  warp to the model's input size, normalised with ImageNet's mean and standard deviation (as RGB:
  mmpose trains with ``bgr_to_rgb=True``; rtmlib passes BGR here, DWPose's own annotator RGB), and
  the SimCC outputs decoded by their maxima (split ratio = output length / input side, 2 for every
  released model). A point's confidence is the mean of its x and y maxima, clipped to [0, 1]; a
  point whose maxima are <= 0 is unknown.

Following one person: the box that overlaps the last frame's chosen box most (IoU >= 0.3), else the
largest. A per-frame detector keeps no other state, so frames are independent (and workers on
segments of a clip agree exactly); cleaning (processing.cleaning) judges who is who afterwards.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from motionlib.core import weights
from motionlib.core.errors import EstimatorError
from motionlib.ingest.estimators.base import THREADS_ENV, EstimatorSpec, PoseEstimator, PoseResult
from motionlib.core.weights import file_sha256

NAMES = ("rtmw", "dwpose")
SKELETON = "coco_wholebody_133"
KEYPOINTS = 133
MEAN = np.array([123.675, 116.28, 103.53], np.float32)  # RGB
STD = np.array([58.395, 57.12, 57.375], np.float32)
PAD_VALUE = 114
BOX_PADDING = 1.25
NMS_IOU = 0.45
FOLLOW_IOU = 0.3
STRIDES = (8, 16, 32)
DEFAULT_DETECTOR_SIZE = (640, 640)  # (height, width) when a detector's input size is dynamic


def available() -> bool:
    try:
        return importlib.util.find_spec("onnxruntime") is not None
    except (ImportError, ValueError):  # a broken install, or one blocked in sys.modules
        return False


def _import_ort(name: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise EstimatorError(f"the {name} estimator runs ONNX models with onnxruntime, which is not installed: "
                             "pip install 'motionlib[rtm]'") from None
    ort.set_default_logger_severity(3)
    return ort


def onnxruntime_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime")


# --- the spec: which files, checked before any work ----------------------------------------------



def spec(name: str, *, min_detection_confidence: float = 0.5, models_config: str | Path | None = None) -> EstimatorSpec:
    """The estimator ``name`` with the weights the models config names, located now (a missing
    file is one line naming the command that fetches it). Its settings hold each file's SHA-256,
    so the same clip ingested with other weights is a new version, not ``unchanged``."""
    if name not in NAMES:
        raise EstimatorError(f"unknown estimator {name!r}")
    if not available():
        _import_ort(name)
    refs, _ = weights.load(name, models_config)
    settings: dict = {"detection_threshold": float(min_detection_confidence)}
    for role in weights.ROLES:
        found = weights.locate(refs[role])
        if not found.present:
            raise EstimatorError(weights.missing_message(found))
        ref = {k: v for k, v in refs[role].to_json().items() if k not in ("estimator", "role")}
        settings[role] = {**ref, "path": str(found.path), "sha256": file_sha256(found.path)}
    return EstimatorSpec(name, SKELETON, settings)


# --- the models -------------------------------------------------------------------------------


def _shape(arg) -> list:
    return [d if isinstance(d, int) else None for d in (arg.shape or [])]


def _shown(shape: list) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


class _Model:
    """One ONNX model of the estimator: its session, and how to name it in a message."""

    def __init__(self, ort, name: str, role: str, entry: dict):
        self.what = f"estimator {name!r}: {role} model {entry.get('path')}"
        path = Path(entry["path"])
        try:
            if path.suffix.lower() == ".zip":
                import zipfile

                member = weights.zip_member(path)
                if member is None:
                    raise ValueError("the archive holds no .onnx model")
                with zipfile.ZipFile(path) as z:
                    source = z.read(member)
            else:
                source = str(path)
            options = ort.SessionOptions()
            options.log_severity_level = 3
            threads = os.environ.get(THREADS_ENV, "")
            if threads.isdigit() and int(threads) > 0:  # set by ingest's worker processes: the cores shared out
                options.intra_op_num_threads = int(threads)
            wanted = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
            self.session = ort.InferenceSession(source, options, providers=wanted)
        except Exception as err:  # onnxruntime raises its own classes; any of them means unusable
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EstimatorError(f"{self.what} is not a usable ONNX model ({first[:300]})") from None
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()

    def image_input(self, kind: str, static: bool) -> tuple[str, int | None, int | None]:
        """(input name, height, width) of a model that takes one image [1, 3, H, W]."""
        shape = _shape(self.inputs[0]) if len(self.inputs) == 1 else []
        ok = len(self.inputs) == 1 and len(shape) == 4 and shape[0] in (1, None) and shape[1] == 3
        if ok and static:
            ok = all(isinstance(d, int) and d > 0 for d in shape[2:])
        if not ok:
            got = ", ".join(_shown(_shape(i)) for i in self.inputs) or "nothing"
            need = "[1, 3, H, W] with a fixed H and W" if static else "[1, 3, H, W]"
            raise EstimatorError(f"{self.what} takes {got}; a {kind} takes one image {need}")
        return self.inputs[0].name, shape[2], shape[3]

    def run(self, feed: dict) -> list[np.ndarray]:
        try:
            return self.session.run(None, feed)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EstimatorError(f"{self.what} failed to run ({first[:300]})") from None


class OnnxWholeBody(PoseEstimator):
    """Detector + whole-body pose model (module docstring)."""

    num_joints = KEYPOINTS
    tracking = False

    def __init__(self, spec: EstimatorSpec):
        self.spec = spec
        s = spec.settings
        ort = _import_ort(spec.name)
        self._det = _Model(ort, spec.name, "detector", s["detector"])
        self._pose = _Model(ort, spec.name, "pose", s["pose"])
        self._threshold = float(s["detection_threshold"])
        self._check_detector()
        self._check_pose()
        self._last: np.ndarray | None = None  # the box followed in the last frame

    # -- checks: the signatures a released model has
    def _check_detector(self) -> None:
        m = self._det
        self._det_input, h, w = m.image_input("person detector", static=False)
        h, w = (h or DEFAULT_DETECTOR_SIZE[0]), (w or DEFAULT_DETECTOR_SIZE[1])
        self._det_size = (h, w)
        shapes = [_shape(o) for o in m.outputs]
        self._det_form = None
        anchors = sum((h // s) * (w // s) for s in STRIDES)
        if len(shapes) >= 1 and len(shapes[0]) == 3 and shapes[0][-1] is not None:
            last, n = shapes[0][-1], shapes[0][1]
            if last > 5 and n in (anchors, None) and h % 32 == 0 and w % 32 == 0:
                self._det_form = "yolox"
            elif last == 5 and (len(shapes) == 1 or len(shapes[1]) == 2):
                self._det_form = "nms"
        if self._det_form is None:
            got = ", ".join(_shown(s) for s in shapes)
            raise EstimatorError(f"{m.what} gives {got}; a person detector gives YOLOX's [1, {anchors}, 5 + classes] "
                                 f"for a {h}x{w} input, or boxes with scores [1, N, 5] (and labels [1, N])")

    def _check_pose(self) -> None:
        m = self._pose
        self._pose_input, h, w = m.image_input("whole-body pose model", static=True)
        self._pose_size = (h, w)
        shapes = [_shape(o) for o in m.outputs]
        names = [o.name for o in m.outputs]
        order = [0, 1]
        if "simcc_x" in names and "simcc_y" in names:
            order = [names.index("simcc_x"), names.index("simcc_y")]
        ok = len(shapes) == 2 and all(len(s) == 3 and s[2] is not None for s in shapes)
        if ok:
            sx, sy = shapes[order[0]], shapes[order[1]]
            if sx[1] != KEYPOINTS or sy[1] != KEYPOINTS:
                got = sx[1] if sx[1] != KEYPOINTS else sy[1]
                raise EstimatorError(f"{m.what} gives {got if got is not None else 'an unknown number of'} keypoints; "
                                     f"the {SKELETON} layout needs a whole-body model of {KEYPOINTS}")
            ratio = sx[2] / w
            ok = ratio >= 1 and sx[2] % w == 0 and sy[2] == ratio * h
        if not ok:
            got = ", ".join(_shown(s) for s in shapes)
            raise EstimatorError(f"{m.what} gives {got} for a {h}x{w} input; a whole-body pose model gives SimCC "
                                 f"simcc_x [1, {KEYPOINTS}, k*{w}] and simcc_y [1, {KEYPOINTS}, k*{h}]")
        self._simcc_order = order
        self._split = float(sx[2] / w)

    # -- one frame
    def process(self, image: np.ndarray, time_s: float) -> PoseResult | None:
        h, w = image.shape[:2]
        boxes = self.detect(image)
        if not len(boxes):
            self._last = None
            return None
        box = self._choose(boxes)
        self._last = box
        xy, score = self.estimate(image, box[:4])
        xy = xy / np.array([w, h], np.float32)
        xy[~(score > 0)] = np.nan
        return PoseResult(xy.astype(np.float32), np.clip(np.nan_to_num(score), 0.0, 1.0).astype(np.float32))

    def detect(self, image: np.ndarray) -> np.ndarray:
        """[n, 5] person boxes (x0, y0, x1, y1 in the image's pixels, score), at or above the
        threshold, NMS applied."""
        import cv2

        H, W = self._det_size
        h, w = image.shape[:2]
        ratio = min(H / h, W / w)
        nh, nw = max(1, int(h * ratio)), max(1, int(w * ratio))
        bgr = np.ascontiguousarray(image[..., ::-1])
        canvas = np.full((H, W, 3), PAD_VALUE, np.uint8)
        canvas[:nh, :nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        x = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        out = self._det.run({self._det_input: x})
        if self._det_form == "yolox":
            boxes = self._decode_yolox(np.array(out[0], np.float32), H, W)
        else:
            dets = np.asarray(out[0], np.float32).reshape(-1, 5)
            if len(out) > 1:
                labels = np.asarray(out[1]).reshape(-1)
                dets = dets[labels == 0]  # the person class (Human-Art detectors have only that one)
            boxes = dets[dets[:, 4] >= self._threshold]
        if not len(boxes):
            return np.zeros((0, 5), np.float32)
        boxes = boxes.copy()
        boxes[:, :4] /= ratio
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        keep = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2) & np.isfinite(boxes).all(axis=1)
        return boxes[keep]

    def _decode_yolox(self, out: np.ndarray, H: int, W: int) -> np.ndarray:
        grids, strides = [], []
        for s in STRIDES:
            ys, xs = np.meshgrid(np.arange(H // s), np.arange(W // s), indexing="ij")
            grids.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
            strides.append(np.full(((H // s) * (W // s), 1), s))
        grid = np.concatenate(grids).astype(np.float32)
        stride = np.concatenate(strides).astype(np.float32)
        p = out[0]
        if p.shape[0] != grid.shape[0]:
            raise EstimatorError(f"{self._det.what} gave {p.shape[0]} anchors for a {H}x{W} input, not {grid.shape[0]}")
        centre = (p[:, :2] + grid) * stride
        with np.errstate(over="ignore"):
            size = np.exp(p[:, 2:4]) * stride
        score = p[:, 4] * p[:, 5]  # objectness x person
        sel = score >= self._threshold
        if not sel.any():
            return np.zeros((0, 5), np.float32)
        c, sz, sc = centre[sel], size[sel], score[sel]
        boxes = np.concatenate([c - sz / 2, c + sz / 2, sc[:, None]], axis=1).astype(np.float32)
        return boxes[_nms(boxes, NMS_IOU)]

    def _choose(self, boxes: np.ndarray) -> np.ndarray:
        if self._last is not None:
            overlap = _iou(self._last, boxes)
            best = int(np.argmax(overlap))
            if overlap[best] >= FOLLOW_IOU:
                return boxes[best]
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[int(np.lexsort((-boxes[:, 4], -area))[0])]

    def estimate(self, image: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([133, 2] pixel coordinates, [133] SimCC scores) of the person in ``box``."""
        import cv2

        H, W = self._pose_size
        x0, y0, x1, y1 = (float(v) for v in box)
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2], np.float64)
        bw, bh = (x1 - x0) * BOX_PADDING, (y1 - y0) * BOX_PADDING
        aspect = W / H
        bw, bh = (bw, bw / aspect) if bw > bh * aspect else (bh * aspect, bh)
        s = W / bw  # pixels of the crop per pixel of the image
        warp = np.array([[s, 0.0, W / 2 - s * centre[0]], [0.0, s, H / 2 - s * centre[1]]], np.float64)
        crop = cv2.warpAffine(image, warp, (W, H), flags=cv2.INTER_LINEAR)
        x = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        out = self._pose.run({self._pose_input: np.ascontiguousarray(x, np.float32)})
        sx = np.asarray(out[self._simcc_order[0]], np.float32).reshape(KEYPOINTS, -1)
        sy = np.asarray(out[self._simcc_order[1]], np.float32).reshape(KEYPOINTS, -1)
        locs = np.stack([sx.argmax(axis=1), sy.argmax(axis=1)], axis=1).astype(np.float64) / self._split
        score = 0.5 * (sx.max(axis=1) + sy.max(axis=1))
        xy = (locs - np.array([W / 2, H / 2])) / s + centre
        return xy.astype(np.float32), score.astype(np.float32)

    def reset(self) -> None:
        self._last = None

    def close(self) -> None:
        self._det = self._pose = None  # type: ignore[assignment]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def _nms(boxes: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-boxes[:, 4], kind="stable"))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(i)
        if order:
            rest = np.array(order)
            order = [int(j) for j, o in zip(rest, _iou(boxes[i], boxes[rest])) if o <= iou]
    return keep


def build(spec: EstimatorSpec) -> PoseEstimator:
    return OnnxWholeBody(spec)
