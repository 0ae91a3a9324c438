"""Hardware presets, overrides (flat, dotted, shortcuts), TOML files, JSON form, bad input."""
from __future__ import annotations

import dataclasses
import json

import pytest

import sdm
from sdm.hardware.card import CardSpec, card
from sdm.core.errors import InvalidInputError
from sdm.placement.cost import server_capex
from sdm.placement.power import parts_from_hardware, server_power
from sdm.hardware.server import HardwareSpec, hardware, hardware_from_toml, hardware_names

PRESETS = ["host-dram", "host-nand", "host-3dxp", "yosemite-v2-nand", "yosemite-v2-3dxp"]


def test_names_and_public_api():
    assert hardware_names() == PRESETS
    assert sdm.HardwareSpec is HardwareSpec and sdm.hardware.HardwareSpec is HardwareSpec
    # sdm.hardware is the package and, called, the preset lookup
    assert sdm.hardware("host-nand") == hardware("host-nand")
    assert sdm.hardware.server.hardware is hardware


@pytest.mark.parametrize("name", PRESETS)
def test_preset_shape(name):
    h = hardware(name)
    assert h.name == name and h.host.sockets == 1
    assert h.dram.medium == "ddr4" and h.dram_capacity_bytes > 0
    if name == "host-dram":
        assert h.scm is None and h.scm_capacity_bytes == 0
    else:
        assert h.scm.medium == ("nand" if name.endswith("nand") else "3dxp")
        assert h.scm_capacity_bytes == h.scm.capacity_bytes * h.scm_count
    if name.startswith("yosemite"):
        assert h.num_cards == 6 and h.pcie is not None
        assert all(c.sram.medium == "sram" and c.lpddr.medium == "lpddr4x" for c in h.cards)
        assert h.cards[0].link.bandwidth_bytes_per_s == pytest.approx(3.94e9, rel=0.01)  # PCIe 3.0 x4
    else:
        assert h.cards == () and h.pcie is None
    pw = server_power(parts_from_hardware(h))
    assert 0 < pw.idle_watts < pw.load_watts
    assert server_capex(parts_from_hardware(h)).capex_usd > 0


def test_nand_and_3dxp_presets_have_comparable_scm_and_less_dram_than_host_dram():
    big = hardware("host-dram").dram_capacity_bytes
    nand, xp = hardware("host-nand"), hardware("host-3dxp")
    assert nand.dram_capacity_bytes < big and xp.dram_capacity_bytes < big
    assert 0.8 < nand.scm_capacity_bytes / xp.scm_capacity_bytes < 1.25
    # fewer DIMMs: the static power SCM is meant to save
    assert nand.host.dram_watts < hardware("host-dram").host.dram_watts


def test_every_host_and_card_figure_names_its_source():
    for name in PRESETS:
        h = hardware(name)
        for obj in (h.host, *h.cards[:1]):
            skip = {"name", "sources", "dram", "sram", "lpddr", "link"}
            missing = [f.name for f in dataclasses.fields(obj) if f.name not in skip and not obj.sources.get(f.name)]
            assert not missing, f"{name}: {type(obj).__name__} lacks sources for {missing}"
        for f in ("scm", "scm_count", "cards", "pcie", "carrier_watts", "carrier_usd"):
            assert h.sources.get(f), f"{name}: no source for {f}"


def test_flat_and_dotted_overrides():
    h = hardware("host-nand", dram_capacity_bytes=64 << 30, **{"scm.qd1_latency_s": 1e-5})
    assert h.dram_capacity_bytes == 64 << 30
    assert h.scm.qd1_latency_s == 1e-5
    assert h.scm.sources["qd1_latency_s"] == "user override"
    assert h.host.dram.sources["capacity_bytes"] == "user override"
    assert h.host.dimm_count == -(-(64 << 30) // h.host.dimm_capacity_bytes)
    base = hardware("host-nand")  # presets are not changed by overrides
    assert base.dram_capacity_bytes == 96 * 10**9 and base.scm.qd1_latency_s == 77.9e-6
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.scm_count = 3  # type: ignore[misc]


def test_overrides_accept_text_values_and_device_names():
    h = hardware("host-nand", **{"host.dram.capacity_bytes": "128GiB", "scm_count": "2", "scm": "p4500"})
    assert h.dram_capacity_bytes == 128 << 30 and h.scm_count == 2 and h.scm.name == "p4500"
    h = hardware("host-3dxp", **{"scm.endurance_dwpd": "none"})
    assert h.scm.endurance_dwpd is None


def test_card_overrides():
    h = hardware("yosemite-v2-nand", card_count=2, **{"cards.0.idle_watts": 5, "cards.lpddr.capacity_bytes": "32GiB"})
    assert h.num_cards == 2
    assert [c.idle_watts for c in h.cards] == [5.0, card().idle_watts]
    assert all(c.lpddr.capacity_bytes == 32 << 30 for c in h.cards)
    h0 = hardware("yosemite-v2-nand", card_count=0)
    assert h0.cards == () and h0.pcie is None and h0.carrier_watts == 0
    h6 = hardware("host-nand", card_count=6)
    assert h6.num_cards == 6 and h6.pcie is not None and h6.carrier_watts > 0
    assert isinstance(h6.cards[0], CardSpec)
    # power follows the card count
    pw6, pw0 = (server_power(parts_from_hardware(h)) for h in (h6, hardware("host-nand")))
    assert (pw6.load_watts - pw0.load_watts) * pw6.psu_efficiency == pytest.approx(6 * card().load_watts + h6.carrier_watts)


def test_remove_scm_needs_count_zero():
    with pytest.raises(InvalidInputError, match="scm_count"):
        hardware("host-nand", scm=None)
    h = hardware("host-nand", scm=None, scm_count=0)
    assert h.scm is None and h.scm_capacity_bytes == 0


@pytest.mark.parametrize(
    "overrides,needles",
    [
        ({"dram_capacity": 1}, ["'dram_capacity'", "dram_capacity_bytes", "scm_count"]),
        ({"scm.latency": 1}, ["'scm.latency'", "scm.qd1_latency_s"]),
        ({"host.dram.nope": 1}, ["'host.dram.nope'", "host.dram.capacity_bytes"]),
        ({"cards.9.idle_watts": 1}, ["cards.9", "out of range"]),
        ({"scm_count": -1}, ["scm_count"]),
        ({"scm_count": 1.5}, ["scm_count"]),
        ({"dram_capacity_bytes": "lots"}, ["host.dram.capacity_bytes", "'lots'"]),
        ({"scm": "ddr4"}, ["NAND or 3DXP"]),
        ({"scm": "floppy"}, ["floppy", "p4800x"]),
        ({"card_count": -2}, ["card_count"]),
        ({"host.sockets": 0}, ["sockets"]),
        ({"cards.idle_watts": 100}, ["load_watts"]),
    ],
)
def test_bad_overrides_are_named(overrides, needles):
    with pytest.raises(InvalidInputError) as exc:
        hardware("yosemite-v2-nand", **overrides)
    for n in needles:
        assert n in str(exc.value), (n, str(exc.value))


def test_unknown_preset():
    with pytest.raises(InvalidInputError, match="host-nand"):
        hardware("mainframe")


def test_to_dict_is_json_and_complete():
    for name in PRESETS:
        d = json.loads(json.dumps(hardware(name).to_dict()))
        assert d["name"] == name
        assert d["host"]["dram"]["sources"]["qd1_latency_s"]
        assert d["derived"]["scm_capacity_bytes"] == hardware(name).scm_capacity_bytes
    d = hardware("yosemite-v2-3dxp").to_dict()
    assert len(d["cards"]) == 6 and d["cards"][0]["lpddr"]["capacity_bytes"] == 16 << 30
    assert d["scm"]["name"] == "p4800x" and d["pcie"]["bandwidth_bytes_per_s"] > 0


def test_toml_overrides_any_field(tmp_path):
    f = tmp_path / "box.toml"
    f.write_text(
        'base = "yosemite-v2-nand"\n'
        'name = "my-box"\n'
        'dram_capacity_bytes = "64GiB"\n'
        "scm_count = 2\n"
        "[scm]\nqd1_latency_s = 9e-5\npeak_iops = 500000\n"
        "[host]\nsocket_watts = 100.0\n"
        "[cards.lpddr]\ncapacity_bytes = 34359738368\n"
        '[sources]\n"scm.qd1_latency_s" = "fio on our drive"\n'
    )
    h = hardware_from_toml(f)
    assert h.name == "my-box" and h.dram_capacity_bytes == 64 << 30 and h.scm_count == 2
    assert h.scm.qd1_latency_s == 9e-5 and h.scm.peak_iops == 500000.0
    assert h.host.socket_watts == 100.0
    assert all(c.lpddr.capacity_bytes == 32 << 30 for c in h.cards)
    assert h.scm.sources["qd1_latency_s"] == "fio on our drive"
    assert h.scm.sources["peak_iops"] == f"TOML file {f}"
    # keyword overrides apply after the file
    assert hardware_from_toml(f, scm_count=3).scm_count == 3


@pytest.mark.parametrize(
    "text,needle",
    [
        ('name = "x"\n', "base"),
        ('base = "nope"\n', "nope"),
        ('base = "host-nand"\n[scm]\nqd1_latencyy_s = 1e-5\n', "scm.qd1_latencyy_s"),
        ('base = "host-nand"\nscm_count = "many"\n', "scm_count"),
        ("base = = \n", "not valid TOML"),
    ],
)
def test_toml_errors_name_the_problem(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(InvalidInputError, match=needle):
        hardware_from_toml(f)


def test_toml_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        hardware_from_toml(tmp_path / "absent.toml")


def test_scm_reads_spread_over_drives():
    xp = hardware("host-3dxp")  # 4 drives
    one = xp.scm.read_time_s(1000, 4096, 32)
    assert xp.scm_read_time_s(4000, 4096, 32) == pytest.approx(one)
    assert xp.scm_read_time_s(0, 4096, 32) == 0.0
    nand = hardware("host-nand")  # 1 drive: same as the device
    assert nand.scm_read_time_s(1000, 4096, 32) == pytest.approx(nand.scm.read_time_s(1000, 4096, 32))
    with pytest.raises(InvalidInputError, match="no SCM"):
        hardware("host-dram").scm_read_time_s(1, 4096, 1)
    with pytest.raises(InvalidInputError, match="n_reads"):
        xp.scm_read_time_s(-1, 4096, 1)
