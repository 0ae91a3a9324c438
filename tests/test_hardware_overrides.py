"""Override coercion (sdm.hardware.overrides): text and numbers become the field's type, or an
InvalidInputError naming the field; nothing is truncated."""
from __future__ import annotations

import numpy as np
import pytest

from sdm.core.errors import InvalidInputError
from sdm.hardware.overrides import apply_overrides, parse_assignments
from sdm.hardware.presets import device
from sdm.hardware.server import hardware


@pytest.mark.parametrize("value", ["2.7", 2.7, "1.5e0", np.float64(2.5)])
def test_fraction_for_an_integer_field_is_an_error(value):
    with pytest.raises(InvalidInputError, match="scm_count.*integer"):
        hardware("host-3dxp", scm_count=value)
    with pytest.raises(InvalidInputError, match="capacity_bytes"):
        device("nand").replace(capacity_bytes=value)


@pytest.mark.parametrize("value, expected", [("2", 2), (2.0, 2), ("2e0", 2), (np.int64(2), 2), ("1KiB", 1024)])
def test_whole_values_for_an_integer_field(value, expected):
    spec = hardware("host-3dxp", scm_count=value)
    assert spec.scm_count == expected and type(spec.scm_count) is int


@pytest.mark.parametrize("value", ["2", 2, np.int64(2), "2.0", np.float64(2.0)])
def test_integer_text_for_a_float_field(value):
    d = device("nand").replace(qd1_latency_s=value)
    assert d.qd1_latency_s == 2.0 and type(d.qd1_latency_s) is float
    assert d.sources["qd1_latency_s"] == "user override"


@pytest.mark.parametrize("value", [True, "lots", "nan", float("inf"), None])
def test_bad_numbers_are_named(value):
    with pytest.raises(InvalidInputError, match="qd1_latency_s"):
        device("nand").replace(qd1_latency_s=value)


def test_cli_text_goes_through_one_parser_and_one_coercion():
    sets = parse_assignments(["scm_count=2.7"])
    assert sets == {"scm_count": "2.7"}  # values stay text: the coercion decides
    with pytest.raises(InvalidInputError, match="scm_count"):
        hardware("host-3dxp", **sets)
    assert hardware("host-3dxp", **parse_assignments(["scm_count=2", "scm.peak_iops=5"])).scm.peak_iops == 5.0
    for bad in (["scm_count"], ["=2"], ["scm_count="], ["a=1", "a=2"]):
        with pytest.raises(InvalidInputError):
            parse_assignments(bad)


def test_preset_names_for_device_fields_need_a_lookup():
    spec = hardware("host-nand", scm="p4500")
    assert spec.scm == device("p4500")
    host = spec.host
    # the generic mechanism knows no presets: without a lookup a name is an error naming the field
    with pytest.raises(InvalidInputError, match="dram: expected a DeviceSpec"):
        apply_overrides(host, {"dram": "ddr4"})
    assert apply_overrides(host, {"dram": "ddr4"}, named={type(host.dram): device}).dram == device("ddr4")


@pytest.mark.parametrize("value", ["2.5", 2.5, -1, "x", True])
def test_card_count_takes_the_same_rules(value):
    with pytest.raises(InvalidInputError, match="card_count"):
        hardware("host-nand", card_count=value)
    assert hardware("host-nand", card_count="2").num_cards == 2 == hardware("host-nand", card_count=2.0).num_cards
