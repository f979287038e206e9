import numpy as np
import pytest

SERIALS = ["21372315", "21372316", "21369048", "22085397", "21241563"]
DJ = "20250101120000"


@pytest.fixture(scope="session")
def pose_session(tmp_path_factory):
    """A short simulated pose session (predictions of 5 cameras, 240 frames), the arena labelling,
    the true calibration TOML and the 3D truth."""
    from usvflow.simulate.geometry import simulate_animals
    from usvflow.simulate.pose import camera_group, write_arena_labels, write_session_pose

    root = tmp_path_factory.mktemp("pose")
    rng = np.random.default_rng(11)
    cams = camera_group(SERIALS)
    tr = simulate_animals(rng, 0.0, 1.7)
    ft = np.arange(240) / 150.057
    truth = write_session_pose(
        root / "exp", root / "truth", cams, tr, ft, {s: 240 for s in SERIALS}, DJ, rng
    )
    write_arena_labels(root / "cal", cams, DJ, rng)
    toml = root / "truth" / "calibration.toml"
    cams.dump(str(toml))
    return {"root": root, "toml": toml, "truth": truth, "cams": cams}
