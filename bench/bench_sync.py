"""A/V sync check throughput, against plain references on the same input.

* LED extraction (``sync.leds.extract_led_pixels``: ffmpeg decodes, crops the LED box, streams RGB of the
  3 pixels to disk) in frames per second, vs decoding every whole frame into numpy (``iter_frames``,
  gray and RGB) — the decoding floor and what a frame-by-frame reader such as the original's costs;
* audio LSB IPIs (``sync.ipi.audio_ipis``, streamed) vs a plain sequential read of the same WAV;
* NIDQ IPIs (``sync.ipi.nidq_ipis``: digital word of a 9-channel file, two bits) vs a plain
  sequential read of the file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from _timing import best_time, plain_read

from usvflow.audio.wav import iter_blocks, write_wav
from usvflow.simulate.syncfiles import write_nidq
from usvflow.simulate.timeline import make_timeline
from usvflow.simulate.video import H264Writer
from usvflow.sync.ipi import audio_ipis, nidq_ipis
from usvflow.sync.leds import extract_led_pixels
from usvflow.video.ffmpeg import iter_frames

LEDS = {"LED_top": (504, 1267), "LED_middle": (551, 1268), "LED_bottom": (599, 1265)}


def _video(path, n, h=1024, w=1280):
    rng = np.random.default_rng(0)
    floor = (
        np.clip(140 + 25 * rng.standard_normal((h // 8, w // 8)), 60, 200).repeat(8, 0).repeat(8, 1)
    )
    with H264Writer(path, w, h, 150, crf=16) as wr:
        for k in range(n):
            f = floor.copy()
            lvl = 230 if (k // 40) % 2 else 30
            for y, x in LEDS.values():
                f[y - 2 : y + 3, x - 2 : x + 3] = lvl
            wr.write(f.astype(np.uint8))


def run(frames: int = 450, audio_s: float = 120.0, nidq_s: float = 120.0) -> dict:
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mp4 = tmp / "v.mp4"
        _video(mp4, frames)
        t_led = best_time(
            lambda: extract_led_pixels(mp4, LEDS, frames, tmp / "px", fps=150.0), repeat=2
        )
        t_gray = best_time(lambda: sum(1 for _ in iter_frames(mp4, gray=True)), repeat=2)
        t_rgb = best_time(lambda: sum(1 for _ in iter_frames(mp4, gray=False)), repeat=2)
        res.update(
            led_fps=frames / t_led, full_gray_fps=frames / t_gray, full_rgb_fps=frames / t_rgb
        )

        sr = 250_000
        n = int(audio_s * sr)
        x = np.random.default_rng(1).integers(-2000, 2000, n).astype(np.int16) & ~np.int16(1)
        period = int(1.1 * sr)
        x[(np.arange(n) % period) < int(0.25 * sr)] |= 1
        wav = tmp / "a.wav"
        write_wav(wav, sr, x)
        del x
        t_a = best_time(lambda: audio_ipis(wav))
        t_plain = best_time(lambda: plain_read(wav))
        t_blocks = best_time(
            lambda: sum(len(b) for b in iter_blocks(wav, channels=0, block=1 << 20))
        )
        mb = wav.stat().st_size / 1e6
        res.update(
            audio_MBps=mb / t_a, audio_plain_MBps=mb / t_plain, audio_blocks_MBps=mb / t_blocks
        )

        tl = make_timeline(np.random.default_rng(2), nidq_s, ["21372315"], ephys_rate=None)
        write_nidq(tmp, tl, "b", np.random.default_rng(3))
        nb = tmp / "b.nidq.bin"
        t_n = best_time(lambda: nidq_ipis(nb, tl.n_frames_least))
        t_np = best_time(lambda: plain_read(nb))
        mbn = nb.stat().st_size / 1e6
        res.update(nidq_MBps=mbn / t_n, nidq_plain_MBps=mbn / t_np)
    print(
        f"LED extraction ({frames} frames 1024x1280 H.264): {res['led_fps']:.0f} frames/s; whole-frame decode "
        f"gray {res['full_gray_fps']:.0f}, RGB {res['full_rgb_fps']:.0f} frames/s "
        f"(ratio vs RGB {res['led_fps'] / res['full_rgb_fps']:.2f}x, vs gray {res['led_fps'] / res['full_gray_fps']:.2f}x)"
    )
    print(
        f"audio LSB IPIs ({audio_s:.0f} s, {mb:.0f} MB): {res['audio_MBps']:.0f} MB/s; plain read "
        f"{res['audio_plain_MBps']:.0f} MB/s, int16 blocks {res['audio_blocks_MBps']:.0f} MB/s "
        f"(ratio vs plain {res['audio_MBps'] / res['audio_plain_MBps']:.2f}x)"
    )
    print(
        f"NIDQ IPIs ({nidq_s:.0f} s, 9 ch, {mbn:.0f} MB): {res['nidq_MBps']:.0f} MB/s; plain read "
        f"{res['nidq_plain_MBps']:.0f} MB/s (ratio {res['nidq_MBps'] / res['nidq_plain_MBps']:.2f}x)"
    )
    return res


if __name__ == "__main__":
    run(*(float(a) for a in sys.argv[1:2]))
