"""`snakemake --report` on a simulated cohort: the overview products, a caption for every result, and
the report rendered by headless Chromium (main page and one figure, screenshots)."""

import asyncio
import json

import pandas as pd
import pytest
import yaml

from ..workflow.conftest import snakemake
from .browser import Page, chromium, png_is_not_blank

pytestmark = pytest.mark.slow


async def check_report(html, out_dir, figure_suffix: str) -> dict:
    """Open the report; the main page lists the categories; every result has a caption; the figure
    ending in ``figure_suffix`` is displayed (naturalWidth > 0). Screenshots in ``out_dir``."""
    async with Page(html.as_uri()) as p:
        await p.wait_for(
            "typeof results !== 'undefined' && document.body.innerText.includes('Cohort')"
        )
        main = await p.screenshot(out_dir / "report_main.png")
        text = await p.eval("document.body.innerText")
        captions = await p.eval(
            "Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.caption || '']))"
        )
        path = next(k for k in captions if k.endswith(figure_suffix))
        key = json.dumps(path)
        await p.eval(
            f"app.setView({{content: 'img', contentPath: results[{key}].data_uri, resultPath: {key}}}) || true"
        )
        # the figure: the <img> whose source is the result's data URI (not the navbar's logo)
        img = f"Array.from(document.images).find(i => i.src === results[{key}].data_uri)"
        await p.wait_for(f"{img} && {img}.complete && {img}.naturalWidth > 0")
        width = await p.eval(f"{img}.getBoundingClientRect().width")
        fig = await p.screenshot(out_dir / "report_figure.png")
    return {
        "text": text,
        "captions": captions,
        "figure": path,
        "width": width,
        "main": main,
        "fig": fig,
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from usvflow.simulate.cohort import simulate_cohort

    out = tmp_path_factory.mktemp("report_cohort")
    simulate_cohort(out, sessions=1, seconds=1.0, seed=5, calibration=True, pose=True)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    cfg["stages"] = ["video", "pose", "report"]
    cfg["pose"] = {"use_unproofread": True}
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(out, config=out / "config.yaml")
    return out


def test_overview_products(cohort):
    truth = {}
    for d in (cohort / "truth").iterdir():
        if d.is_dir():
            truth[d.name] = yaml.safe_load((d / "ground_truth.json").read_text())
    exp = next(s for s, t in truth.items() if t["kind"] == "experiment")
    table = pd.read_csv(cohort / "report" / "cohort_overview.csv")
    assert list(table["session"]) == [exp]  # experiment sessions only
    row = table.iloc[0]
    assert row["pose_verdict"] == "ok" and row["pose_coverage_animal_0"] > 0.9
    assert row["duration_s"] == pytest.approx(1.0, abs=0.05)
    assert (
        (cohort / "Data" / exp / "report" / f"{exp}_pose_overview.svg")
        .read_text()
        .lstrip()
        .startswith("<?xml")
    )


def test_report_renders_in_chromium(cohort, artifacts):
    chromium()  # skip early without a browser
    html = cohort / "report.html"
    snakemake(cohort, "--report", str(html), config=cohort / "config.yaml")
    r = asyncio.run(check_report(html, artifacts, "_pose_overview.svg"))
    print(f"report screenshots: {r['main']} {r['fig']}")
    assert "0. Cohort" in r["text"] and "1. Session overview" in r["text"]
    assert r["captions"] and all(len(c) > 40 for c in r["captions"].values()), r["captions"]
    assert r["width"] > 300
    assert png_is_not_blank(r["main"]) > 0.02 and png_is_not_blank(r["fig"]) > 0.02
