"""Adapter: every camera's ChArUco calibration video -> calibration TOML, metadata HDF5, histogram SVG."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.pose.calibrate import calibrate  # noqa: E402

b = snakemake.params.board
board = dict(board_xy=b["board_xy"], square_len=b["square_len"], marker_len_bits=b["marker_len_bits"],
             dict_size=b["dict_size"])  # fmt: skip
videos = dict(zip(snakemake.params.serials, snakemake.input))
out = snakemake.output
summary = calibrate(videos, board, out.toml, out.metadata, out.histogram, threads=snakemake.threads)
log.info("calibration: %s", summary)
