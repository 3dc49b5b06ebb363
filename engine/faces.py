"""Face detection with OpenCV's bundled Haar cascade (offline, no model download), imported lazily.

OpenCV is optional: without it — or with OpenCV 5, whose wheels no longer ship the Haar cascades — the health
report says "face check unavailable" and prepare falls back to centre crops.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

CASCADE_FILE = "haarcascade_frontalface_default.xml"
DETECT_SIDE = 192  # the health check looks on a copy this size (~5 ms): dataset faces span over 1/8 of the side


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2


_idle: queue.SimpleQueue[Any] = queue.SimpleQueue()  # classifiers not in use: OpenCV's are not re-entrant


@cache
def _cascade_path() -> tuple[str, str]:
    """(path of the cascade file, "") or ("", why face detection is unavailable)."""
    try:
        import cv2
    except ImportError:
        return "", "face check unavailable (opencv-python-headless is not installed)"
    if not hasattr(cv2, "CascadeClassifier"):
        return "", f"face check unavailable (OpenCV {cv2.__version__} has no Haar cascades; install OpenCV 4.x)"
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / CASCADE_FILE if folder else None
    if path is None or not path.is_file():
        return "", f"face check unavailable (OpenCV {cv2.__version__} does not ship {CASCADE_FILE})"
    return str(path), ""


def unavailable_reason() -> str:
    """'' when faces can be detected, else one sentence saying why not."""
    return _cascade_path()[1]


def available() -> bool:
    return not unavailable_reason()


@contextmanager
def _classifier() -> Iterator[Any]:
    """Borrow a classifier (loading one costs ~20 ms; scans run on short-lived thread pools)."""
    try:
        clf = _idle.get_nowait()
    except queue.Empty:
        clf = _load_classifier()
    try:
        yield clf
    finally:
        _idle.put(clf)


def _load_classifier() -> Any:
    import cv2

    path, why = _cascade_path()
    if not path:
        raise RuntimeError(why)
    cv2.setNumThreads(1)  # our callers already run one detection per core
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise RuntimeError(f"face check unavailable (OpenCV could not load {path})")
    return clf


def detect(image: Image.Image, max_side: int = DETECT_SIDE, scale_step: float = 1.2,
           min_fraction: float = 1 / 8) -> list[Box]:
    """Frontal faces in `image` (any mode), largest first, in the image's own pixel coordinates. Faces smaller
    than `min_fraction` of the shorter side are not looked for (each smaller scale costs more than all larger).

    Raises RuntimeError when detection is unavailable (check `available()` first).
    """
    import numpy as np

    gray = image.convert("L")
    scale = min(1.0, max_side / max(gray.size))
    if scale < 1.0:
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR, reducing_gap=2.0)
    side = min(gray.size)
    min_face = max(20, round(side * min_fraction))
    with _classifier() as clf:
        found = clf.detectMultiScale(np.asarray(gray), scaleFactor=scale_step, minNeighbors=5,
                                     minSize=(min_face, min_face))
    boxes = [Box(*(round(v / scale) for v in b)) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: b.area, reverse=True)
