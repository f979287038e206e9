"""Adapter: LED intensities + cropped sync-channel audio + Arduino log (+ NIDQ) -> sync/<session>_av_sync.json."""

from pathlib import Path

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.loopbio import read_store  # noqa: E402
from usvflow.sync.av import av_sync_check, read_nidq_ipi_data, write_result  # noqa: E402

p = snakemake.params
inp = snakemake.input
av = p.av
serials = list(p.serials)
frame_times = None
if av["extract_exact_video_frame_times"]:
    frame_times = {s: read_store(p.cameras[s]).frame_time for s in serials}
nidq = None
if "nidq" in inp.keys():
    nidq = read_nidq_ipi_data(inp.nidq, float(av["nidq"]["sample_rate"]))
devices = list(p.devices)
res = av_sync_check(
    session_id=p.session,
    frame_counts=inp.counts,
    led_px=dict(zip(serials, inp.px)),
    led_sidecars=dict(zip(serials, inp.px_info)),
    audio=dict(zip(devices, inp.audio)),
    coolterm=inp.coolterm,
    frames_in_audio={Path(f).name.split("_", 1)[0]: f for f in inp.frames},
    nidq=nidq,
    frame_times=frame_times,
    tolerance_ms=float(av["millisecond_divergence_tolerance"]),
    relative_intensity_threshold=float(av["relative_intensity_threshold"]),
    min_event_duration_frames=int(av["min_event_duration_frames"]),
    min_matched_fraction=float(av["min_matched_fraction"]),
    min_paired_ipis=int(av["min_paired_ipis"]),
)
write_result(snakemake.output[0], res)
for dev, e in res["devices"].items():
    st = e.get("stats", {})
    if st.get("n"):
        log.info("device %s: %d IPIs, median %.2f ms, mean %.2f ms, max |d| %.2f ms", dev, st["n"],
                 st["median_ms"], st["mean_ms"], st["max_abs_ms"])  # fmt: skip
if res["passed"]:
    log.info("A/V sync verdict: pass")
else:
    log.warning("A/V sync verdict: %s\n  %s", res["verdict"].upper(), "\n  ".join(res["reasons"]))
