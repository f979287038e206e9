"""Step 15a: LED intensities at the sync LEDs of a sync camera's re-encoded video.

The Arduino drives three LEDs (top, middle, bottom) that one camera sees. For each LED the config gives
a nominal pixel ``[row, col]`` (``sync.av.led_pixels[<led_px_version>][<serial>]``). As in the original,
the pixel is *refined* first: in the region ``[y ± dev, x ± dev]`` the frame with the brightest ROI
pixel is found among the first ``search_s`` seconds, the ROI of that frame is Otsu-thresholded and the
centroid of the bright blob becomes the LED pixel. Differences from the original:

* only one connected bright component counts, the brightest one nearest the nominal pixel (a bright
  patch of floor or the edge of a neighbouring LED inside the ROI does not pull the centroid off);
* the search window defaults to 2 s: the longest Arduino cycle is 0.25 + 1.499 s, so the original's
  1.5 s can miss every flash;
* a ROI that never changes (no flash, covered LED) keeps the nominal pixel and says so
  (``refined: false``) instead of thresholding noise.

Then every frame ``0 .. N-1`` (``N`` = ``total_frame_number_least``) gives the RGB values at the three
pixels, written to ``sync/sync_px_<serial>-<date_joint>`` as raw uint8 of shape ``(N, 3, 3)`` ([frame,
LED top/middle/bottom, R/G/B]; no header, the original's memmap layout), plus a JSON sidecar with the
shape and the pixels. One ffmpeg decoding pass streams only the small box around the LEDs (``crop``
filter), so memory does not depend on the video length.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
from scipy import ndimage

from usvflow.io.atomic import InputError, atomic_path, write_json
from usvflow.video.ffmpeg import iter_frames, probe

__all__ = [
    "LED_NAMES",
    "extract_led_pixels",
    "iter_box_frames",
    "led_table",
    "otsu_threshold",
    "read_led_pixels",
    "refine_pixel",
    "sync_px_name",
]

LED_NAMES = ("LED_top", "LED_middle", "LED_bottom")
#: a ROI whose brightest and darkest pixel (over the search window) differ by less than this shows no LED
MIN_CONTRAST = 20.0
#: frames per write to the output file
WRITE_BLOCK = 4096


def sync_px_name(serial: str, date_joint: str) -> str:
    """``sync_px_<serial>-<date_joint>`` (no extension, as the original)."""
    return f"sync_px_{serial}-{date_joint}"


def led_table(led_pixels: Mapping, version: str, serial: str) -> dict[str, tuple[int, int]]:
    """The nominal ``{LED name: (row, col)}`` of ``serial`` in pixel-table ``version`` (config)."""
    if version not in led_pixels:
        raise InputError(
            None,
            f"sync.av.led_px_version {version!r} is not in sync.av.led_pixels ({sorted(led_pixels)})",
        )
    table = led_pixels[version]
    if str(serial) not in table:
        raise InputError(
            None,
            f"sync.av.led_pixels[{version!r}] has no entry for camera {serial} (has {sorted(table)})",
        )
    entry = table[str(serial)]
    missing = [n for n in LED_NAMES if n not in entry]
    if missing:
        raise InputError(None, f"sync.av.led_pixels[{version!r}][{serial!r}] lacks {missing}")
    return {n: (int(entry[n][0]), int(entry[n][1])) for n in LED_NAMES}


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of uint8-range values (maximises the between-class variance of the histogram).

    Pixels ``> threshold`` are the bright class (as ``cv2.threshold(..., THRESH_BINARY + THRESH_OTSU)``).
    """
    v = np.clip(np.rint(np.asarray(values, dtype=np.float64)), 0, 255).astype(np.int64).ravel()
    hist = np.bincount(v, minlength=256).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    mu_t = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_b = (mu_t * omega - mu) ** 2 / (omega * (1.0 - omega))
    sigma_b[~np.isfinite(sigma_b)] = -1.0
    return float(np.argmax(sigma_b))


def refine_pixel(roi: np.ndarray) -> tuple[int, int] | None:
    """Centroid ``(row, col)`` (ROI coordinates, rounded) of the LED's bright blob.

    Otsu threshold, connected components; among the components nearly as bright as the brightest,
    the one nearest the ROI centre (the nominal pixel) wins.

    ``roi``: 2-D gray values of the frame where the LED is brightest. None when the ROI is flat
    (max − min < :data:`MIN_CONTRAST`).
    """
    roi = np.asarray(roi, dtype=np.float64)
    if roi.max() - roi.min() < MIN_CONTRAST:
        return None
    thr = otsu_threshold(roi)
    labels, n = ndimage.label(roi > thr)
    if n == 0:
        return None
    idx = np.arange(1, n + 1)
    peaks = np.asarray(ndimage.maximum(roi, labels, idx))
    cents = np.asarray(ndimage.center_of_mass(np.ones_like(roi), labels, idx)).reshape(n, 2)
    # the brightest blobs (a neighbouring LED at the ROI's edge may be as bright): the one nearest the centre
    bright = peaks >= thr + 0.75 * (peaks.max() - thr)
    centre = (np.asarray(roi.shape) - 1) / 2.0
    dist = np.where(bright, np.hypot(*(cents - centre).T), np.inf)
    y, x = cents[int(np.argmin(dist))]
    return int(round(y)), int(round(x))


def iter_box_frames(mp4: str | os.PathLike, box: tuple[int, int, int, int]) -> Iterator[np.ndarray]:
    """Decode ``mp4`` frame by frame, keeping only ``box = (y0, x0, height, width)``: uint8 ``(h, w, 3)`` RGB.

    ffmpeg's ``crop`` filter cuts the box out of every decoded frame before the RGB conversion, so only
    the box crosses the pipe (:func:`usvflow.video.ffmpeg.iter_frames`).
    """
    return iter_frames(mp4, gray=False, crop=box)


def _rois(nominal: Mapping[str, tuple[int, int]], dev: int, height: int, width: int, video) -> dict:
    out = {}
    for name in LED_NAMES:
        y, x = nominal[name]
        if not (0 <= y < height and 0 <= x < width):
            raise InputError(
                video,
                f"{name} pixel [{y}, {x}] lies outside the {height}x{width} frame (led_pixels?)",
            )
        out[name] = (
            max(y - dev, 0),
            min(y + dev + 1, height),
            max(x - dev, 0),
            min(x + dev + 1, width),
        )
    return out


def extract_led_pixels(
    video: str | os.PathLike,
    nominal: Mapping[str, tuple[int, int]],
    n_frames: int,
    out_path: str | os.PathLike,
    fps: float,
    dev: int = 10,
    search_s: float = 2.0,
    sidecar: str | os.PathLike | None = None,
) -> dict:
    """Write the ``(n_frames, 3, 3)`` uint8 LED intensities of ``video`` to ``out_path`` (atomic).

    ``nominal``: ``{LED name: (row, col)}``; ``dev``: ROI half-size; ``search_s``: refinement window.
    Returns (and writes to ``sidecar`` if given) ``{"video", "shape", "leds", "nominal_pixels",
    "pixels", "refined", "peak_frames", "contrast", "search_frames", "dev"}``. A video with fewer than
    ``n_frames`` frames raises :class:`InputError`.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    info = probe(video)
    height, width = info["height"], info["width"]
    rois = _rois(nominal, int(dev), height, width, video)
    # one box around every ROI, on the chroma grid (even offsets and sizes), 2 px margin
    y0 = max(min(r[0] for r in rois.values()) - 2, 0) // 2 * 2
    x0 = max(min(r[2] for r in rois.values()) - 2, 0) // 2 * 2
    y1 = min(max(r[1] for r in rois.values()) + 2, height)
    x1 = min(max(r[3] for r in rois.values()) + 2, width)
    bh, bw = y1 - y0, x1 - x0
    if bh % 2 and y0 + bh < height:
        bh += 1
    if bw % 2 and x0 + bw < width:
        bw += 1
    box = (y0, x0, bh, bw)
    k_search = max(1, min(int(n_frames), int(round(search_s * fps))))

    frames = iter_box_frames(video, box)
    head: list[np.ndarray] = []
    out = np.empty((0, 3, 3), np.uint8)
    n = 0
    pixels: dict[str, tuple[int, int]] = {}
    refined: dict[str, bool] = {}
    peaks: dict[str, int | None] = {}
    contrast: dict[str, float] = {}
    try:
        with atomic_path(out_path) as tmp, open(tmp, "wb") as fh:
            for f in frames:
                if n < k_search:
                    head.append(f)
                    n += 1
                    if n < k_search:
                        continue
                    pixels, refined, peaks, contrast = _refine_all(head, rois, nominal, box)
                    ys, xs = _index(pixels, box)
                    block = np.stack([h[ys, xs] for h in head])
                    fh.write(block.tobytes())
                    head = []
                    out = np.empty((WRITE_BLOCK, 3, 3), np.uint8)
                    j = 0
                    continue
                if n >= n_frames:
                    break
                out[j] = f[ys, xs]
                j += 1
                n += 1
                if j == WRITE_BLOCK:
                    fh.write(out.tobytes())
                    j = 0
            if n < k_search:  # the whole video is shorter than the search window
                if n < n_frames:
                    raise InputError(
                        video, f"holds {n} frames; the frame-count JSON says {n_frames}"
                    )
            else:
                fh.write(out[:j].tobytes())
            if n < n_frames:
                raise InputError(video, f"holds {n} frames; the frame-count JSON says {n_frames}")
    finally:
        frames.close()
    result = {
        "video": str(video),
        "shape": [int(n_frames), 3, 3],
        "dtype": "uint8",
        "axes": ["frame", "LED (top, middle, bottom)", "colour (R, G, B)"],
        "leds": list(LED_NAMES),
        "nominal_pixels": {k: [int(v[0]), int(v[1])] for k, v in nominal.items()},
        "pixels": {k: [int(v[0]), int(v[1])] for k, v in pixels.items()},
        "refined": refined,
        "peak_frames": peaks,
        "contrast": contrast,
        "search_frames": int(k_search),
        "dev": int(dev),
    }
    if sidecar is not None:
        write_json(sidecar, result)
    return result


def _index(pixels, box):
    ys = np.array([pixels[n][0] - box[0] for n in LED_NAMES])
    xs = np.array([pixels[n][1] - box[1] for n in LED_NAMES])
    return ys, xs


def _refine_all(head, rois, nominal, box):
    gray = np.stack(head).astype(np.float32).mean(axis=-1)  # (k, bh, bw)
    pixels, refined, peaks, contrast = {}, {}, {}, {}
    for name in LED_NAMES:
        a, b, c, d = rois[name]
        sub = gray[:, a - box[0] : b - box[0], c - box[1] : d - box[1]]
        contrast[name] = float(sub.max() - sub.min())
        peak = int(np.argmax(sub.reshape(len(sub), -1).max(axis=1)))
        # a flash shows as the ROI's bright spot; a flat or never-changing ROI is not refined
        spot = refine_pixel(sub[peak]) if contrast[name] >= MIN_CONTRAST else None
        if spot is None:
            pixels[name], refined[name], peaks[name] = tuple(nominal[name]), False, None
        else:
            pixels[name], refined[name], peaks[name] = (a + spot[0], c + spot[1]), True, peak
    return pixels, refined, peaks, contrast


def read_led_pixels(path: str | os.PathLike, n_frames: int | None = None) -> np.ndarray:
    """Read ``sync/sync_px_<serial>-<date_joint>`` as a read-only ``(N, 3, 3)`` uint8 memmap.

    ``N`` comes from the file size (checked against ``n_frames`` if given).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    if size % 9:
        raise InputError(
            path, f"size {size} bytes is not a multiple of 9 (3 LEDs x 3 colours per frame)"
        )
    n = size // 9
    if n_frames is not None and n != n_frames:
        raise InputError(path, f"holds {n} frames, expected {n_frames}")
    if n == 0:
        return np.zeros((0, 3, 3), np.uint8)
    return np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3, 3))
