"""Adapter: NI-DAQ digital word -> sync/nidq_ipi_data.npy (IPI durations and starts in the video window)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.sync.av import write_nidq_ipi_data  # noqa: E402
from usvflow.sync.ipi import nidq_ipis  # noqa: E402

cfg = snakemake.params.nidq
counts = read_json(snakemake.input.counts)
res = nidq_ipis(
    snakemake.input.bin,
    int(counts["total_frame_number_least"]),
    sample_rate=float(cfg["sample_rate"]),
    n_channels=int(cfg["num_channels"]),
    triggerbox_bit=int(cfg["triggerbox_bit"]),
    sync_bit=int(cfg["sync_bit"]),
)
write_nidq_ipi_data(snakemake.output[0], res)
log.info(
    "NIDQ: video window samples %d..%d, %d IPIs",
    res["frame0_sample"],
    res["end_sample"],
    len(res["ipi_ms"]),
)
