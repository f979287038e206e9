"""Adapter: sync camera's re-encoded video -> sync/sync_px_<serial>-<date_joint> (+ .json sidecar)."""

from usvflow.workflow import setup

log = setup(snakemake)
from usvflow.io.atomic import read_json  # noqa: E402
from usvflow.sync.leds import extract_led_pixels, led_table  # noqa: E402

serial = snakemake.wildcards.serial
p = snakemake.params
counts = read_json(snakemake.input.counts)
nominal = led_table(p.led_pixels, p.version, serial)
res = extract_led_pixels(
    snakemake.input.video,
    nominal,
    int(counts["total_frame_number_least"]),
    snakemake.output.px,
    fps=float(counts[serial][1]),
    dev=int(p.dev),
    search_s=float(p.search_s),
    sidecar=snakemake.output.info,
)
for name, ok in res["refined"].items():
    if not ok:
        log.warning("%s: no flash seen near %s (contrast %.1f); kept the nominal pixel", name,
                    res["nominal_pixels"][name], res["contrast"][name])  # fmt: skip
log.info(
    "LED pixels %s (nominal %s), %d frames", res["pixels"], res["nominal_pixels"], res["shape"][0]
)
