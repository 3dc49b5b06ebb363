"""Per-image measures for the health report: sharpness, exposure, perceptual hash. Pillow + numpy + imagehash."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Blur: the Crete–Dolmiere "blur effect" (no-reference; 0 = sharp, 1 = blurry): how much a deliberate 1×11 blur
# still changes the image's neighbour differences. Unlike the variance of the Laplacian it does not call flat-colour
# drawings blurry (their few edges are sharp), and it barely depends on how much texture a picture has.
BLUR_WINDOW = 11


def blur_effect(gray: np.ndarray) -> float:
    g = gray.astype(np.float32)
    if min(g.shape) <= 2 * BLUR_WINDOW + 2:
        return 0.0
    return max(_blur_along_rows(g), _blur_along_rows(np.ascontiguousarray(g.T)))


def _blur_along_rows(g: np.ndarray) -> float:
    """A running mean over w pixels changes between neighbours by (g[i+h+1] - g[i-h]) / w, so the blurred
    image's differences need no filtering at all: two shifted subtractions."""
    w, h = BLUR_WINDOW, BLUR_WINDOW // 2
    n = g.shape[1]
    rows = g[w:-w]  # borders would bias the score
    d_sharp = np.abs(rows[:, w + 1:n - w + 1] - rows[:, w:n - w])
    d_blur = np.abs(rows[:, w + h + 1:n - w + h + 1] - rows[:, w - h:n - w - h]) / w
    s_sharp = float(d_sharp.sum())
    if s_sharp <= 0:
        return 1.0  # featureless: nothing sharp in it
    s_lost = float(np.maximum(d_sharp - d_blur, 0).sum())
    return (s_sharp - s_lost) / s_sharp


def exposure(gray: Image.Image) -> tuple[float, float, float]:
    """(mean brightness 0..255, share of pixels ≥ 250, share of pixels ≤ 5) of a greyscale image."""
    hist = gray.histogram()
    total = float(sum(hist)) or 1.0
    mean = sum(i * n for i, n in enumerate(hist)) / total
    return mean, sum(hist[250:]) / total, sum(hist[:6]) / total


def phash(gray: Image.Image) -> str:
    """64-bit perceptual hash as 16 hex digits (imagehash's DCT pHash on a small copy: fast and equivalent)."""
    import imagehash

    small = gray if max(gray.size) <= 128 else gray.resize((128, 128), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return str(imagehash.phash(small))


def colour_signature(rgb: Image.Image) -> list[int]:
    """Mean colour of each quarter (12 numbers): a recoloured picture with the same layout is not a duplicate."""
    return list(rgb.convert("RGB").resize((2, 2), Image.Resampling.BOX).tobytes())


def colour_distance_matrix(signatures: list[list[int]]) -> np.ndarray:
    """Pairwise mean absolute difference of colour signatures (0..255)."""
    sig = np.array(signatures, dtype=np.float32)
    return np.abs(sig[:, None, :] - sig[None, :, :]).mean(axis=2)


def hamming_matrix(hashes: list[str]) -> np.ndarray:
    """Pairwise bit distances of 64-bit hex hashes (vectorised: 500 images take about a millisecond)."""
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    return np.bitwise_count(values[:, None] ^ values[None, :]).astype(np.int32)
