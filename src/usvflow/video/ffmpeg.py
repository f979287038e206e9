"""Thin, checked wrappers around the ffmpeg command-line tool.

The original pipeline started ffmpeg and only *logged* non-zero exit codes; here every call is checked:
a failing ffmpeg raises :class:`RuntimeError` that shows the command and the tail of its error output.

Which binary is used (first that applies):

1. the environment variable ``USVFLOW_FFMPEG`` (a path or a command name on ``PATH``);
2. the binary shipped with the ``imageio-ffmpeg`` package (``imageio_ffmpeg.get_ffmpeg_exe()``);
3. ``ffmpeg`` on ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from ..io.progress import progress, progress_enabled

#: how much of ffmpeg's error output an exception message shows
STDERR_TAIL_CHARS = 3000


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to use (see the module docstring); RuntimeError if none is found."""
    env = os.environ.get("USVFLOW_FFMPEG")
    if env:
        found = env if (os.path.isfile(env) and os.access(env, os.X_OK)) else shutil.which(env)
        if not found:
            raise RuntimeError(
                f"USVFLOW_FFMPEG={env!r} is not an executable file or a command on PATH"
            )
        return found
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.path.isfile(exe):
            return exe
    except Exception:  # not installed, or no binary for this platform
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise RuntimeError(
        "no ffmpeg binary found: set USVFLOW_FFMPEG, install the 'imageio-ffmpeg' package, "
        "or put 'ffmpeg' on PATH"
    )


def _command(args: Sequence[str | os.PathLike]) -> list[str]:
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", *[os.fspath(a) for a in args]]


def _tail(text: str, n: int = STDERR_TAIL_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= n else "…" + text[-n:]


def _write_log(log, cmd: list[str], proc: subprocess.CompletedProcess) -> None:
    if log is None:
        return
    msg = f"$ {shlex.join(cmd)}\n[exit {proc.returncode}]\n{proc.stderr or ''}"
    if callable(log):
        log(msg)
        return
    with open(log, "a") as fh:
        fh.write(f"# {datetime.now().isoformat(timespec='seconds')}\n{msg}\n")


def run_ffmpeg(
    args: Sequence[str | os.PathLike],
    log: str | os.PathLike | Callable[[str], None] | None = None,
    timeout: float | None = None,
    cwd: str | os.PathLike | None = None,
    progress_desc: str | None = None,
    progress_total: int | None = None,
) -> subprocess.CompletedProcess:
    """Run ``ffmpeg -hide_banner -nostdin <args>`` and check its exit status.

    ``args`` excludes the binary. ``log`` is a file to append the command and ffmpeg's error output to,
    or a callable that receives that text. Returns the completed process (``stdout``/``stderr`` as text).
    A non-zero exit (or a timeout) raises :class:`RuntimeError` showing the command and the tail of stderr.
    With ``progress_desc`` (and no ``timeout``) a progress bar of the frames written (of
    ``progress_total``) goes to stderr (:mod:`usvflow.io.progress`); the output file is the same.
    """
    if progress_desc is not None and timeout is None and progress_enabled():
        cmd = _command(["-progress", "pipe:1", "-nostats", *args])
        proc = _run_with_progress(cmd, cwd, progress_desc, progress_total)
    else:
        cmd = _command(args)
        proc = _run_plain(cmd, cwd, timeout)
    _write_log(log, cmd, proc)
    if proc.returncode != 0:
        raise RuntimeError(
            f"ffmpeg failed (exit {proc.returncode}): {shlex.join(cmd)}\n{_tail(proc.stderr)}"
        )
    return proc


def _run_plain(cmd, cwd, timeout: float | None) -> subprocess.CompletedProcess:
    """Run ``cmd`` capturing its output; a timeout raises RuntimeError with the tail of stderr."""
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, errors="replace", timeout=timeout, cwd=cwd
        )
    except subprocess.TimeoutExpired as exc:
        err = (
            exc.stderr.decode(errors="replace")
            if isinstance(exc.stderr, bytes)
            else (exc.stderr or "")
        )
        raise RuntimeError(
            f"ffmpeg timed out after {timeout} s: {shlex.join(cmd)}\n{_tail(err)}"
        ) from None


def _run_with_progress(cmd, cwd, desc: str, total: int | None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (which has ``-progress pipe:1``): update a bar from its ``frame=N`` lines."""
    lines = []
    with (
        tempfile.TemporaryFile("w+", errors="replace") as err,
        progress(total=total, desc=desc, unit="frame", unit_scale=True) as bar,
    ):
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, errors="replace",
                              cwd=cwd) as proc:  # fmt: skip
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("frame="):
                    with contextlib.suppress(ValueError):
                        bar.update(max(0, int(line.split("=", 1)[1]) - bar.n))
        err.seek(0)
        return subprocess.CompletedProcess(cmd, proc.returncode, "".join(lines), err.read())


def _progress_frames(stdout: str, path) -> int:
    """The last ``frame=N`` of ffmpeg's ``-progress`` output."""
    frames = [line.split("=", 1)[1] for line in stdout.splitlines() if line.startswith("frame=")]
    if not frames:
        raise RuntimeError(f"{path}: ffmpeg reported no frame count")
    return int(frames[-1])


def count_frames(mp4: str | os.PathLike, decode: bool = True) -> int:
    """Number of frames of the first video stream of ``mp4``.

    ``decode=True`` (default) decodes every frame and counts what comes out (exact, slower on long
    videos); ``decode=False`` counts the stream's packets without decoding (one packet per frame in
    mp4; fast, reads the file once).
    """
    mp4 = Path(mp4)
    if not mp4.is_file():
        raise FileNotFoundError(mp4)
    codec = [] if decode else ["-c", "copy"]
    # fmt: off
    args = [
        "-v", "error", "-nostats", "-i", mp4, "-map", "0:v:0", *codec, "-f", "null", "-progress",
        "pipe:1", "-",
    ]
    # fmt: on
    proc = run_ffmpeg(args)
    return _progress_frames(proc.stdout, mp4)


def packet_times(mp4: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Presentation times (s, sorted) of every video packet of ``mp4`` and the stream time base (s).

    Read with ``ffmpeg -c copy -f framecrc`` (no decoding).
    """
    mp4 = Path(mp4)
    if not mp4.is_file():
        raise FileNotFoundError(mp4)
    proc = run_ffmpeg(
        ["-v", "error", "-i", mp4, "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"]
    )
    tb = None
    pts = []
    for line in proc.stdout.splitlines():
        if line.startswith("#tb 0:"):
            num, den = line.split(":", 1)[1].strip().split("/")
            tb = int(num) / int(den)
        elif line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(",")]
            pts.append(int(fields[2]))
    if tb is None:
        raise RuntimeError(f"{mp4}: could not read the stream time base")
    return np.sort(np.asarray(pts, dtype=np.int64)) * tb, tb


def video_fps(mp4: str | os.PathLike) -> float:
    """Frame rate of ``mp4`` from its packet timestamps: (frames − 1) / (last pts − first pts)."""
    t, _ = packet_times(mp4)
    if len(t) < 2 or t[-1] <= t[0]:
        raise RuntimeError(f"{mp4}: fewer than two distinct frame timestamps")
    return float((len(t) - 1) / (t[-1] - t[0]))


def concat_list_line(path: str | os.PathLike) -> str:
    """One line of an ffmpeg concat-demuxer list naming ``path`` (absolute, single-quoted safely)."""
    p = os.path.abspath(os.fspath(path))
    if "\n" in p or "\r" in p:
        raise ValueError(f"cannot list a path containing a line break: {p!r}")
    return "file '" + p.replace("'", "'\\''") + "'\n"


_STREAM_RE = re.compile(r"Stream #\d+:\d+.*?: Video: (?P<rest>.*)")
_SIZE_RE = re.compile(r"(?<![0-9a-fx])(?P<w>\d{2,5})x(?P<h>\d{2,5})(?![0-9])")
_FPS_RE = re.compile(r"(?P<fps>\d+(?:\.\d+)?)(?P<k>k?) fps")


def probe(mp4: str | os.PathLike) -> dict:
    """``{"width", "height", "fps"}`` of the first video stream, as ``ffmpeg -i`` reports them.

    ``fps`` is ffmpeg's displayed average rate (rounded to 2 decimals for non-integers; None if
    absent). For an exact rate use :func:`video_fps`.
    """
    mp4 = Path(mp4)
    if not mp4.is_file():
        raise FileNotFoundError(mp4)
    proc = subprocess.run(_command(["-i", mp4]), capture_output=True, text=True, errors="replace")
    for line in proc.stderr.splitlines():
        m = _STREAM_RE.search(line)
        if not m:
            continue
        size = _SIZE_RE.search(m["rest"])
        if not size:
            break
        fps = _FPS_RE.search(m["rest"])
        return {
            "width": int(size["w"]),
            "height": int(size["h"]),
            "fps": None if not fps else float(fps["fps"]) * (1000 if fps["k"] else 1),
        }
    raise RuntimeError(f"{mp4}: ffmpeg found no video stream\n{_tail(proc.stderr)}")


def iter_frames(mp4: str | os.PathLike, gray: bool = True, crop: tuple[int, int, int, int] | None = None
                ) -> Iterator[np.ndarray]:  # fmt: skip
    """Decode ``mp4`` frame by frame: uint8 arrays ``(H, W)`` (gray) or ``(H, W, 3)`` (RGB).

    Frames are streamed from an ffmpeg pipe (``-fps_mode passthrough``: exactly the stored frames);
    the process is closed when the generator is exhausted or closed, and a decoding failure raises
    RuntimeError. ``crop = (y0, x0, height, width)``: ffmpeg's ``crop`` filter cuts that box out of
    every decoded frame before the pixel conversion, so only the box crosses the pipe.
    """
    if crop is None:
        info = probe(mp4)
        h, w = info["height"], info["width"]
        vf = []
    else:
        y0, x0, h, w = (int(v) for v in crop)
        vf = ["-vf", f"crop={w}:{h}:{x0}:{y0}:exact=1"]
    ch = 1 if gray else 3
    nbytes = h * w * ch
    # fmt: off
    args = [
        "-v", "error", "-nostats", "-i", mp4, "-map", "0:v:0", "-fps_mode", "passthrough", *vf, "-f",
        "rawvideo", "-pix_fmt", "gray" if gray else "rgb24", "-",
    ]
    # fmt: on
    cmd = _command(args)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, bufsize=nbytes)
        try:
            while True:
                buf = proc.stdout.read(nbytes)
                if not buf:
                    break
                if len(buf) != nbytes:
                    raise RuntimeError(
                        f"{mp4}: truncated frame from ffmpeg ({len(buf)} of {nbytes} bytes)"
                    )
                a = np.frombuffer(buf, np.uint8)
                yield a.reshape(h, w) if gray else a.reshape(h, w, 3)
            rc = proc.wait()
            if rc != 0:
                err.seek(0)
                raise RuntimeError(
                    f"ffmpeg failed (exit {rc}) decoding {mp4}: {shlex.join(cmd)}\n"
                    f"{_tail(err.read().decode(errors='replace'))}"
                )
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
