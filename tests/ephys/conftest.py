"""A 3-session e-phys group of short simulated recordings and its Kilosort4/Phy output."""

from __future__ import annotations

import numpy as np
import pytest

from usvflow.simulate.ephys import draw_units, write_sorter_output, write_spikeglx
from usvflow.simulate.timeline import make_timeline

CAMS = ["21372315", "21241563"]
HS = "23280196"
N_AP = 6


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ephys_group")
    rng = np.random.default_rng(21)
    units = draw_units(rng, N_AP, 4, rate_range=(20.0, 40.0))
    sessions = []
    for i in range(3):
        tl = make_timeline(rng, 0.6, CAMS)
        sid = f"20250430_1{i}0000"
        t = write_spikeglx(
            tmp / "Data" / sid, sid, tl, rng, n_ap=N_AP, units=units, headstage_sn=HS, chunk_s=0.4
        )
        sessions.append(
            {
                "session_id": sid,
                "root_directory": str(tmp / "Data" / sid),
                "timeline": tl,
                "truth": t,
            }
        )
    ks = tmp / "EPHYS" / "20250430_imec0" / "kilosort4"
    sorter = write_sorter_output(ks, [(s["truth"]["n_samples"], s["truth"]["units"]) for s in sessions],
                                 N_AP + 1, units, sessions[0]["truth"]["rate_true"], rng=rng)  # fmt: skip
    return {"root": tmp, "sessions": sessions, "ks": ks, "sorter": sorter, "units": units}
