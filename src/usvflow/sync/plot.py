"""Step 15g: the A/V sync summary figure (``sync/<session>_summary.svg``).

One column per audio device (plus one for the NIDQ when present):

* top: histogram of the IPI discrepancies with 1-ms bins from ``-M - 0.5`` to ``M + 1`` (``M`` = the
  rounded largest |discrepancy|; x-limits ±10.5 ms, or ±(M + 1.5) when larger), lines at 0, the median
  (#FF6347) and the mean (#00C78C), and the median, mean, 99 % CI (mean ± 2.58 SEM) and number of IPIs;
* bottom: discrepancy against the camera frame number (drift, jumps), with the tolerance band.

The title carries the session, the verdict and, on failure, its reasons. Phidget environment insets of
the original are not drawn (no phidget data is read by this step).
"""

from __future__ import annotations

import os
import textwrap

import numpy as np

from usvflow.io.atomic import save_figure

__all__ = ["plot_summary"]

MEDIAN_COLOR = "#FF6347"
MEAN_COLOR = "#00C78C"


def _hist_panel(ax, d: np.ndarray, st: dict, label: str) -> None:
    m = int(round(np.abs(d).max())) if len(d) else 0
    bins = np.arange(-m - 0.5, m + 1.0 + 1e-9, 1.0)
    if len(bins) < 2:
        bins = np.array([-0.5, 0.5])
    ax.hist(d, bins=bins, color="#7f7f7f", edgecolor="white")
    lim = 10.5 if m < 10 else m + 1.5
    ax.set_xlim(-lim, lim)
    ax.axvline(0, color="black", ls="--", lw=0.8)
    ax.axvline(st["median_ms"], color=MEDIAN_COLOR, lw=1.5)
    ax.axvline(st["mean_ms"], color=MEAN_COLOR, lw=1.5)
    ci = st.get("ci99_ms") or [np.nan, np.nan]
    ax.text(
        0.02, 0.97,
        f"median {st['median_ms']:.2f} ms\nmean {st['mean_ms']:.2f} ms\n99% CI [{ci[0]:.2f}, {ci[1]:.2f}] ms\n"
        f"N_IPI = {st['n']}",
        transform=ax.transAxes, va="top", ha="left", fontsize=8,
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
    )  # fmt: skip
    ax.set_xlabel(f"{label} discrepancy (ms)")
    ax.set_ylabel("IPIs")


def _scatter_panel(
    ax, frames: np.ndarray, d: np.ndarray, tol: float, label: str
) -> tuple[float, float]:
    ax.axhspan(-tol, tol, color="#d9f2e6", zorder=0, label=f"±{tol:g} ms")
    ax.axhline(0, color="black", ls="--", lw=0.8)
    ax.plot(frames, d, color="#bbbbbb", lw=0.6, zorder=1)
    ax.scatter(frames, d, s=12, color="#1f77b4", zorder=2)
    lo = min(-tol, float(d.min()) if len(d) else 0.0)
    hi = max(tol, float(d.max()) if len(d) else 0.0)
    pad = 0.08 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("Camera frame number")
    ax.set_ylabel(f"{label} discrepancy (ms)")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    return ax.get_ylim()


def plot_summary(result: dict, out_svg: str | os.PathLike) -> dict:
    """Draw the summary figure of an :func:`usvflow.sync.av.av_sync_check` result (dict as written
    to JSON) into ``out_svg`` (atomic). Returns ``{column: {"n", "ylim"}}`` of the drawn panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = []
    for dev, e in result.get("devices", {}).items():
        cols.append((f"audio {dev}", e, f"A({dev})-V"))
    nidq = result.get("nidq")
    if nidq:
        cols.append(("NIDQ", nidq, "NIDQ-V"))
    if not cols:
        cols.append(("no device", {}, "A-V"))
    tol = float(result.get("tolerance_ms", 12.0))
    fig, axes = plt.subplots(
        2, len(cols), figsize=(6.4 * len(cols), 9.6), squeeze=False, layout="constrained"
    )
    info = {}
    for j, (title, e, label) in enumerate(cols):
        d = np.asarray(
            [np.nan if v is None else v for v in e.get("ipi_discrepancy_ms", [])], dtype=np.float64
        )
        fr = np.asarray(e.get("video_ipi_start_frames", []), dtype=np.float64)
        ok = np.isfinite(d)
        fr = fr[ok] if len(fr) == len(d) else np.arange(int(ok.sum()), dtype=np.float64)
        d = d[ok]
        passed = e.get("passed", False)
        cam = e.get("camera")
        head = (
            f"{title}" + (f" vs camera {cam}" if cam else "") + (" — PASS" if passed else " — FAIL")
        )
        axes[0, j].set_title(head, color="black" if passed else "#c00000", fontsize=11)
        st = e.get("stats") or {}
        if len(d) and st.get("n"):
            _hist_panel(axes[0, j], d, st, label)
            ylim = _scatter_panel(axes[1, j], fr, d, tol, label)
        else:
            for ax in axes[:, j]:
                ax.set_axis_off()
            why = "; ".join(e.get("reasons", [])) or "no discrepancies"
            axes[0, j].text(0.5, 0.5, textwrap.fill(why, 50), ha="center", va="center", color="#c00000",
                            transform=axes[0, j].transAxes, fontsize=9)  # fmt: skip
            ylim = None
        info[title] = {"n": int(len(d)), "ylim": ylim}
    verdict = result.get("verdict", "fail").upper()
    sup = f"A/V sync {result.get('session_id', '')}: {verdict} (tolerance ±{tol:g} ms)"
    vids = result.get("video", {})
    if vids:
        sup += "\n" + ", ".join(
            f"camera {s}: ESR {v.get('esr', float('nan')):.3f} fps, {v.get('n_ipis', 0)} IPIs"
            for s, v in vids.items()
        )
    reasons = result.get("reasons", [])
    if reasons:
        sup += "\n" + "\n".join(textwrap.shorten(r, 140) for r in reasons[:4])
    fig.suptitle(sup, fontsize=10, color="black" if verdict == "PASS" else "#c00000")
    save_figure(fig, out_svg, dpi=100)
    plt.close(fig)
    return info
