"""The skew of a scanned page, and its image rendered straight for OCR.

A page scanned a degree or two askew still OCRs word for word, but its lines climb across
the page: over a letter page, a 2° tilt moves a column's edge 27 pt, more than the gutter
between two columns, so no straight gap separates them and the columns are read as one.
The page is rendered rotated back by its skew instead -- MuPDF draws the page through a
rotation matrix, so the straightened image is sampled once from the source, not resampled
from a tilted bitmap -- and the column logic sees straight columns.

The skew is measured with a projection profile (the classic method of document image
analysis): the ink of a page of text, projected onto the axis across its lines, is sharpest
(its squared histogram is largest) at the angle of the lines.
"""

from __future__ import annotations

import numpy as np
import pymupdf

PROFILE_DPI = 100  # enough resolution to see lines, cheap to project
MAX_SKEW = 5.0  # degrees searched either way; a page tilted further is not a scanning slip
COARSE_STEP, FINE_STEP = 0.25, 0.05  # degrees
MIN_SKEW = 0.2  # degrees below which the page is left as it is
MIN_INK_POINTS = 500  # a page with less ink (blank, a few specks) has no lines to measure
INK_LEVEL = 128  # gray value below which a pixel is ink


def ink_points(page: pymupdf.Page) -> tuple[np.ndarray, np.ndarray]:
    """The x and y (in pixels at :data:`PROFILE_DPI`) of the page's ink."""
    pixmap = page.get_pixmap(dpi=PROFILE_DPI, colorspace=pymupdf.csGRAY, alpha=False)
    gray = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.stride)[:, : pixmap.width]
    ys, xs = np.nonzero(gray < INK_LEVEL)
    return xs.astype(np.float64), ys.astype(np.float64)


def sharpness(xs: np.ndarray, ys: np.ndarray, degrees: float) -> float:
    """How sharply the ink, turned back by ``degrees``, falls into rows."""
    angle = np.radians(degrees)
    rows = ys * np.cos(angle) - xs * np.sin(angle)
    counts = np.bincount((rows - rows.min()).astype(np.int64))
    return float(np.dot(counts, counts))


def best_angle(xs: np.ndarray, ys: np.ndarray, candidates: np.ndarray) -> float:
    return float(candidates[int(np.argmax([sharpness(xs, ys, degrees) for degrees in candidates]))])


def skew_degrees(page: pymupdf.Page) -> float:
    """The angle (degrees, clockwise as displayed) the page's text lines are tilted by,
    within :data:`MAX_SKEW`; 0.0 for a page without enough ink to tell."""
    xs, ys = ink_points(page)
    if len(xs) < MIN_INK_POINTS:
        return 0.0
    coarse = best_angle(xs, ys, np.arange(-MAX_SKEW, MAX_SKEW + COARSE_STEP / 2, COARSE_STEP))
    return best_angle(xs, ys, np.arange(coarse - COARSE_STEP, coarse + COARSE_STEP + FINE_STEP / 2, FINE_STEP))


def straight_pixmap(page: pymupdf.Page, dpi: int) -> tuple[pymupdf.Pixmap, float]:
    """The page rendered in gray at ``dpi`` with its skew turned back, and the skew corrected
    (0.0 when it was below :data:`MIN_SKEW`). The image grows by the corners the rotation
    brings in, which render white."""
    skew = skew_degrees(page)
    if abs(skew) < MIN_SKEW:
        skew = 0.0
    matrix = pymupdf.Matrix(dpi / 72, dpi / 72).prerotate(-skew)
    return page.get_pixmap(matrix=matrix, colorspace=pymupdf.csGRAY, alpha=False), skew
