"""Adapter: HPSS output -> linear-phase FIR filtered (delay-compensated, same length)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.audio.highpass import design_sinc, highpass_file  # noqa: E402
from usvflow.audio.wav import wav_info  # noqa: E402

low, high = snakemake.params.freq_bounds
fs = wav_info(snakemake.input[0]).samplerate
# The original's `sinc high-low` (SoX semantics): [0, f] is a pure high-pass at f.
taps = design_sinc(fs, hp_hz=high, lp_hz=low, atten_db=snakemake.params.stopband_attenuation_db)
res = highpass_file(snakemake.input[0], snakemake.output[0], taps=taps)
log.info("filter: %s", res)
