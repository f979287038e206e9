"""Command-line options generated from a config section carry the setting's name, type, default and
help from the schema."""

import argparse

from usvflow.io.cli_options import add_settings_options, settings_from_args
from usvflow.io.config import schema_defaults


def test_options_are_the_section():
    p = argparse.ArgumentParser()
    keys = add_settings_options(p, "audio.hpss")
    section = schema_defaults("audio.hpss")
    assert keys == list(section)
    a = p.parse_args([])
    assert settings_from_args(a, keys) == section
    a = p.parse_args(["--stft-window-length-hop-size", "256", "64", "--power", "2"])
    assert a.stft_window_length_hop_size == [256, 64] and a.power == 2.0
    helps = {x.dest: x.help for x in p._actions}
    assert "audio.hpss.power" in helps["power"] and "exponent" in helps["power"].lower()


def test_booleans_and_nullable_numbers():
    p = argparse.ArgumentParser()
    keys = add_settings_options(p, "usv_summary")
    a = p.parse_args(["--no-filter-putative-noise", "--noise-corr-percentile", "90"])
    got = settings_from_args(a, keys)
    assert got["filter_putative_noise"] is False and got["noise_corr_percentile"] == 90.0
    assert settings_from_args(p.parse_args([]), keys) == schema_defaults("usv_summary")
