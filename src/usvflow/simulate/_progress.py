"""Progress bars of the simulator (tqdm on stderr; a no-op when switched off)."""

from __future__ import annotations

from tqdm import tqdm


def progress_bar(total: int, desc: str, unit: str, enabled: bool) -> tqdm:
    """A tqdm bar of ``total`` ``unit`` labelled ``desc``; disabled (no output) unless ``enabled``."""
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        leave=False,
        mininterval=1.0,
        unit_scale=True,
        dynamic_ncols=True,
    )
