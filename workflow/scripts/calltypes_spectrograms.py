"""Adapter: a session's USV summary + hpss_filtered memmap -> audio/spectrograms/<sid>_usv_spectrograms.npz."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.usv.calltypes import export_session_spectrograms  # noqa: E402
from usvflow.usv.spectrogram import SpecParams  # noqa: E402

params = SpecParams.from_dict(snakemake.params.spectrogram)
n = export_session_spectrograms(
    snakemake.input.summary, snakemake.input.mmap, snakemake.output[0], params
)
log.info("%d spectrogram(s) %s from %s", n, (params.n_freq, params.n_time), snakemake.input.mmap)
