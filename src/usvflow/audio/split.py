"""Step 8a: split an Avisoft device's multichannel files into one mono WAV per channel.

``<dev>_<ts_1>.wav, <dev>_<ts_2>.wav, ...`` (12 channels each, consecutive in time) become
``<dev>_<stamp>_ch01.wav ... <dev>_<stamp>_ch12.wav``: channel ``NN`` of every file, joined in time
order - what the original does with ``sox remix N`` per file and channel followed by ``sox`` concatenation,
but in one streaming pass over the multichannel files that writes all channels at once. Samples are
copied bit for bit. ``<stamp>`` is the time stamp of the first *master* file and names both devices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.atomic import InputError
from ..io.progress import progress
from .wav import OutputSet, check_same_format, iter_blocks, wav_info

SPLIT_BLOCK = 1 << 16  # frames per block: a (block, 12) int16 block stays in the CPU cache


def split_name(device: str, stamp: str, channel: int) -> str:
    """``<device>_<stamp>_chNN.wav`` (``channel`` 1-based)."""
    return f"{device}_{stamp}_ch{channel:02d}.wav"


def split_device(
    files: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    device: str,
    stamp: str,
    channels: int = 12,
    sample_rate: int | None = None,
    block: int = SPLIT_BLOCK,
) -> tuple[list[Path], int]:
    """Split one device's multichannel WAVs into mono ``<device>_<stamp>_chNN.wav`` in ``out_dir``.

    ``files`` are joined in the order of their names (Avisoft names sort chronologically). Every file
    must be 16-bit PCM with ``channels`` channels and one sample rate (``sample_rate`` if given);
    otherwise :class:`InputError` names the file, and nothing is written. All outputs appear together
    (temporary names renamed at the end) or not at all.

    Returns the output paths (channel order) and the number of samples per channel.
    """
    if not files:
        raise InputError(out_dir, f"no multichannel files of audio device {device!r}")
    files = sorted((Path(f) for f in files), key=lambda p: p.name)
    infos = [wav_info(f) for f in files]
    rate, _ = check_same_format(infos, channels=channels, samplerate=sample_rate)
    out_dir = Path(out_dir)
    targets = [out_dir / split_name(device, stamp, c + 1) for c in range(channels)]
    n = 0
    with OutputSet() as out:
        total = sum(i.frames for i in infos)
        writers = [out.wav(t, rate, frames_hint=total) for t in targets]
        cols = np.empty((channels, block), dtype=np.int16)
        bar = progress(total=total, desc=f"split {device} ({channels} ch)", unit="sample",
                       unit_scale=True)  # fmt: skip
        with bar:
            for blk in iter_blocks(files, block=block):
                m = len(blk)
                np.copyto(cols[:, :m], blk.T)
                for c, w in enumerate(writers):
                    w.write(cols[c, :m])
                n += m
                bar.update(m)
    return targets, n
