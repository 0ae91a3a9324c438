"""Issue 12: plots use one colour per configuration across panels, readable log ticks, and a
hit-rate axis within 0-100%."""
from __future__ import annotations

import matplotlib.colors as mcolors
import pytest

from sdm.placement.plots import config_colors, figure


def _results():
    fleet = lambda w: {"watts": w, "servers": 1}  # noqa: E731
    return [{"name": "host-dram", "hardware": "host-dram", "p99_latency_s": 2e-5, "fleet": fleet(900.0)},
            {"name": "host-nand (dram 1/2)", "hardware": "host-nand", "p99_latency_s": 1e-3, "fleet": fleet(700.0)},
            {"name": "host-3dxp", "hardware": "host-3dxp", "p99_latency_s": 1e-4, "fleet": fleet(650.0)}]


def test_one_colour_per_configuration_in_both_panels():
    curves = {"host-nand": [(3.0, 0.5), (12.0, 0.8), (96.0, 1.0)], "host-3dxp": [(3.0, 0.6), (96.0, 1.0)]}
    fig = figure(_results(), curves)
    a, b = fig.axes
    scatter = {c.get_label(): mcolors.to_hex(c.get_facecolor()[0]) for c in a.collections}
    lines = {ln.get_label(): mcolors.to_hex(ln.get_color()) for ln in b.get_lines()}
    assert scatter["host-nand (dram 1/2)"] == lines["host-nand"]
    assert scatter["host-3dxp"] == lines["host-3dxp"]
    assert len(set(scatter.values())) == 3
    assert b.get_ylim() == (0.0, 100.0)
    labels = [t.get_text() for t in b.get_xticklabels(minor=True)]
    assert not any(labels)                                      # no smeared minor labels
    fig.canvas.draw()
    major = [t.get_text() for t in b.get_xticklabels() if t.get_text()]
    assert major and all("$" not in t for t in major)           # plain numbers, not 10^x mathtext
    import matplotlib.pyplot as plt
    plt.close(fig)


@pytest.mark.parametrize("names", [["a", "b", "a", "c"], ["x"]])
def test_config_colors_are_stable(names):
    c = config_colors(names)
    assert list(c) == list(dict.fromkeys(names)) and len(set(c.values())) == len(c)
