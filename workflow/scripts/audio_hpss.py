"""Adapter: cropped channel -> harmonic part (chunked HPSS equal to the whole-file computation)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.hpss import hpss_file  # noqa: E402

p = snakemake.params
n_fft, hop = p.stft_window_length_hop_size
res = hpss_file(snakemake.input[0], snakemake.output[0], n_fft=n_fft, hop=hop, kernel=tuple(p.kernel_size),
                power=p.power, margin=tuple(p.margin))  # fmt: skip
log.info("hpss: %s", res)
