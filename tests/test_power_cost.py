"""Power and cost per server and per fleet: figures from the presets, overrides, fleet arithmetic."""
from __future__ import annotations

import math

import pytest

from sdm.core.errors import InvalidInputError
from sdm.placement.cost import HOURS_PER_YEAR, CostDefaults, energy_usd_per_year, server_capex, tco_usd
from sdm.placement.fleet import ServerProfile, savings, size_fleet
from sdm.placement.scenarios import SCENARIOS, scenario_rows
from sdm.placement.power import PowerDefaults, ServerParts, parts_from_hardware, server_power
from sdm.hardware.server import hardware, hardware_names


@pytest.mark.parametrize("name", hardware_names())
def test_server_figures_follow_the_hardware_preset(name):
    hw = hardware(name)
    parts = parts_from_hardware(hw)
    pw = server_power(parts)
    eff = PowerDefaults().psu_efficiency
    # the one model: component sums from the preset's own figures, plus the supply's loss
    h = hw.host
    scm_w = hw.scm.active_watts * hw.scm_count if hw.scm is not None else 0.0
    cards_w = sum(c.load_watts for c in hw.cards)
    load_dc = h.base_platform_watts + h.sockets * h.socket_watts + h.dram_watts + scm_w + hw.carrier_watts + cards_w
    assert pw.load_watts == pytest.approx(load_dc / eff)
    scm_usd = hw.scm_capacity_bytes / 1e9 * hw.scm.usd_per_gb if hw.scm is not None else 0.0
    capex = h.base_platform_usd + h.sockets * h.socket_usd + h.dram_usd + scm_usd + hw.carrier_usd + sum(c.usd for c in hw.cards)
    assert server_capex(parts).capex_usd == pytest.approx(capex)
    assert pw.idle_watts <= pw.at(0.5) <= pw.load_watts


def test_less_dram_fitted_costs_less_and_draws_less():
    hw = hardware("host-dram")
    full, half = parts_from_hardware(hw), parts_from_hardware(hw, hw.dram_capacity_bytes // 2)
    assert half.dimm_count == full.dimm_count // 2
    assert server_power(half).load_watts < server_power(full).load_watts
    assert server_capex(half).capex_usd < server_capex(full).capex_usd


def test_defaults_are_sourced_and_overridable():
    d = PowerDefaults()
    for f in ("base_platform_watts", "cpu_socket_load_watts", "dimm_load_watts", "card_load_watts"):
        assert d.sources[f]
    for f in ("platform_usd", "usd_per_kwh", "pue", "years"):
        assert CostDefaults().sources[f]
    d2 = d.replace(base_platform_watts=100.0)
    assert d2.sources["base_platform_watts"] == "override"
    bare = ServerParts("bare", dram_bytes=64 << 30)          # no preset figures: defaults apply
    assert server_power(bare, d2).load_watts - server_power(bare, d).load_watts == pytest.approx(50 / d.psu_efficiency)
    with pytest.raises(InvalidInputError, match="unknown field 'flux_watts' of PowerDefaults"):
        d.replace(flux_watts=1.0)
    with pytest.raises(InvalidInputError, match="unknown field 'gold' of CostDefaults"):
        CostDefaults().replace(gold=1.0)
    # the CLI's --set passes text: read as numbers, or refused by name (never kept as a string)
    assert d.replace(psu_efficiency="0.9").psu_efficiency == 0.9
    assert CostDefaults().replace(years="5").years == 5.0
    with pytest.raises(InvalidInputError, match="pue"):
        CostDefaults().replace(pue="lots")


def test_energy_and_tco():
    c = CostDefaults(usd_per_kwh=0.1, pue=1.5, years=2)
    assert energy_usd_per_year(1000.0, c) == pytest.approx(1.5 * HOURS_PER_YEAR * 0.1)
    assert tco_usd(500.0, 1000.0, c) == pytest.approx(500 + 2 * 1.5 * HOURS_PER_YEAR * 0.1)


def test_fleet_is_bound_by_capacity_or_qps():
    s = ServerProfile("s", capacity_bytes=100.0, qps=10.0, idle_watts=100.0, load_watts=200.0, capex_usd=1000.0,
                      bottleneck="scm")
    cap = size_fleet(s, model_bytes=450.0, qps_target=20.0)
    assert (cap.servers, cap.bound_by) == (5, "capacity")
    assert cap.utilization == pytest.approx(20 / 50)
    assert cap.watts == pytest.approx(5 * (100 + 0.4 * 100))
    load = size_fleet(s, model_bytes=50.0, qps_target=95.0)
    assert (load.servers, load.bound_by) == (10, "qps (scm)")
    sv = savings(cap, load)
    assert sv["servers"] == pytest.approx((5 - 10) / 5)
    with pytest.raises(InvalidInputError):
        size_fleet(s, 0, 1)


def test_scenarios_show_savings_where_capacity_binds_and_none_where_compute_binds():
    rows = {r["hardware"]: r for r in scenario_rows(**SCENARIOS["A capacity-bound, light load"][0])}
    assert rows["host-dram"]["bound_by"] == "capacity"
    assert rows["host-3dxp"]["power_saving"] > 0.05
    load = {r["hardware"]: r for r in scenario_rows(**SCENARIOS["C load-bound"][0])}
    assert load["host-dram"]["bound_by"].startswith("qps")
    assert load["host-3dxp"]["power_saving"] < rows["host-3dxp"]["power_saving"]
    assert math.isfinite(load["host-nand"]["power_saving"])


@pytest.mark.parametrize("make, needle", [
    (lambda: PowerDefaults(psu_efficiency=0.0), "psu_efficiency"),
    (lambda: PowerDefaults(dimm_load_watts=float("nan")), "dimm_load_watts"),
    (lambda: PowerDefaults().replace(card_idle_watts=-1.0), "card_idle_watts"),
    (lambda: CostDefaults(pue=0.5), "pue"),
    (lambda: CostDefaults().replace(usd_per_kwh=-0.1), "usd_per_kwh"),
])
def test_bad_defaults_are_named(make, needle):
    with pytest.raises(InvalidInputError, match=needle):
        make()


def test_six_card_report_uses_the_same_server_model():
    """`sdm-plan run`'s server power is the planner's model at the same utilisation (the carrier
    counted once), and a card overridden alone changes both by the same watts."""
    import numpy as np

    from sdm.accel.report import server_power_watts
    from sdm.hardware.platform import Platform

    for hw in (hardware("yosemite-v2-nand"), hardware("yosemite-v2-nand", **{"cards.0.load_watts": 20.0})):
        pf = Platform.from_hardware(hw)
        pb = server_power(parts_from_hardware(hw))
        for u in (0.0, 0.3, 1.0):
            P = server_power_watts(pf, np.full(pf.num_cards, u), u, u)
            assert P["server_watts"] == pytest.approx(pb.at(u))
            assert P["carrier_watts"] == pytest.approx(hw.carrier_watts)
