from pathlib import Path

from usvflow.io.config import load_schema, render_config_readme

ROOT = Path(__file__).resolve().parents[2]


def test_config_readme_tables_are_up_to_date():
    readme = (ROOT / "config" / "README.md").read_text()
    expected = render_config_readme(
        readme,
        load_schema(ROOT / "workflow" / "schemas" / "config.schema.yaml"),
        load_schema(ROOT / "workflow" / "schemas" / "sessions.schema.yaml"),
    )
    assert readme == expected, "config/README.md is stale: run `usvflow config-docs`"
    assert "`audio.hpss.power`" in readme and "`ephys_group`" in readme
