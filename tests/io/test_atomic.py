"""Atomic writes: temporaries of killed writes do not outlive the next write; figures have fixed bytes."""

import os
import subprocess
import sys

import numpy as np
import pytest

from usvflow.io.atomic import (
    atomic_open,
    remove_stale_temporaries,
    save_figure,
    temporary_name,
)


def test_next_write_removes_temporaries_of_a_killed_write(tmp_path):
    target = tmp_path / "x_hpss.wav"
    stale = [
        tmp_path / ".tmp-12345.x_hpss.wav",
        tmp_path / ".tmp-1.x_hpss.wav",
        tmp_path / ".tmp-7..tmp-7.x_hpss.wav",  # a temporary's own temporary
    ]
    for p in stale:
        p.write_bytes(b"partial")
    (tmp_path / ".old-3.x_hpss.wav").mkdir()
    keep = [
        tmp_path / ".tmp-12345.y.x_hpss.wav",  # another target's temporary
        tmp_path / ".tmp-12345.x_hpss.wav.json",
        tmp_path / "notes.tmp-1.x_hpss.wav",
    ]
    for p in keep:
        p.write_bytes(b"other")
    with atomic_open(target, "w") as fh:
        fh.write("done")
    assert target.read_text() == "done"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name] + [p.name for p in keep]
    )


def test_killed_process_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "big.bin"
    code = (
        "import os, signal, sys\n"
        "from usvflow.io.atomic import atomic_path\n"
        f"with atomic_path({str(target)!r}) as tmp:\n"
        "    open(tmp, 'wb').write(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode != 0
    left = [p for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].name.startswith(".tmp-") and not target.exists()
    assert remove_stale_temporaries(target) == left
    assert list(tmp_path.iterdir()) == []


def test_temporary_name_keeps_the_suffix(tmp_path):
    t = temporary_name(tmp_path / "a" / "v.mp4")
    assert t.parent == tmp_path / "a" and t.name == f".tmp-{os.getpid()}.v.mp4"


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_figures_have_the_same_bytes_every_time(tmp_path, suffix):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def draw(path):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.hist(np.arange(100) % 7, bins=7)  # patches with clip paths (ids salted in SVG)
        ax.set_title("t")
        save_figure(fig, path)
        plt.close(fig)
        return path.read_bytes()

    a = draw(tmp_path / f"a.{suffix}")
    b = draw(tmp_path / f"b.{suffix}")
    assert a == b
    # and across processes (matplotlib's default SVG id salt is a fresh UUID per process)
    code = (
        "import sys, numpy as np, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
        "from usvflow.io.atomic import save_figure\n"
        "fig, ax = plt.subplots(figsize=(3, 2)); ax.hist(np.arange(100) % 7, bins=7); ax.set_title('t')\n"
        "save_figure(fig, sys.argv[1])\n"
    )
    c = tmp_path / f"c.{suffix}"
    subprocess.run([sys.executable, "-c", code, str(c)], check=True)
    assert c.read_bytes() == a
    if suffix == "svg":
        assert b"<dc:date>" not in a
