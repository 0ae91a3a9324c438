"""Plan file, row sets and model specs: round trips and clear errors on bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.spec import TableSpec, row_bytes
from sdm.placement.model_spec import load_model, parse_dlrm_list
from sdm.placement.plan import INLINE_RANGES, Plan, RowSet, TablePlan, TierPlacement
from sdm.placement.profile import Profile


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 300), max_size=120), st.integers(0, 130), st.integers(0, 130))
def test_rowset_forms_agree_with_python_sets(ids, a, b):
    ref = sorted(set(ids))
    rs = RowSet.from_ids(np.array(ids, dtype=np.int64))
    assert rs.count == len(ref)
    assert rs.to_ids().tolist() == ref
    probe = np.arange(-2, 305)
    assert rs.contains(probe).tolist() == [p in set(ref) for p in probe]
    assert rs.slice(a, b).to_ids().tolist() == ref[a:b]


def test_rowset_prefers_ranges_for_runs():
    rs = RowSet.from_ids(np.arange(1000, 5000))
    assert rs.ranges is not None and rs.ranges.tolist() == [[1000, 5000]]
    scattered = RowSet.from_ids(np.arange(0, 1000, 7))
    assert scattered.ids is not None


def _plan(tmp_path, row_order=None):
    many = RowSet.from_ids(np.arange(20, 20 + 4 * INLINE_RANGES * 3, 3))          # many ranges -> .npy file
    tp = TablePlan("t0", 1000, 16, "fp32", 64,
                   placements=[TierPlacement("sram", 2, RowSet(ranges=[[0, 10]])), TierPlacement("dram", None, many)],
                   dram_cache_bytes=4096, page_layout="co-access" if row_order is not None else "id-order",
                   row_order=row_order, predicted_hit_rate={"sram": 0.5, "dram": 0.2, "scm": 0.3})
    return Plan("m", "host-nand", "min-latency", "row", {"t0": tp}, {"latency_s": 1e-3})


def test_plan_round_trip(tmp_path):
    order = np.random.default_rng(0).permutation(1000)
    path = _plan(tmp_path, order).save(tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "sdm-plan" and doc["version"] == 1
    assert doc["tables"]["t0"]["placements"][0]["rows"]["ranges"] == [[0, 10]]        # readable inline
    back = Plan.load(path)
    tp = back.table("t0")
    assert tp.placements[0].card == 2 and tp.placements[0].rows.count == 10
    assert tp.placements[1].rows.to_ids().tolist() == list(range(20, 20 + 4 * INLINE_RANGES * 3, 3))
    assert np.array_equal(tp.row_order, order)
    tier, card = tp.tier_of(np.array([0, 23, 24, 999]))
    assert tier.tolist() == [0, 2, 3, 3] and card.tolist() == [2, -1, -1, -1]


# written by the landed version (e1afbae) of Plan.save: plan files from it must still load
LANDED_PLAN = ('{"format":"sdm-plan","version":1,"created":"2026-01-01","model":"m","hardware":"host-nand",'
               '"objective":"min-latency","policy":"row","summary":{"latency_s":0.0001},"tiers":[{"tier":"sram"}],'
               '"tables":{"a":{"num_rows":100,"dim":4,"row_format":"fp32","row_bytes":16,"placements":[{"tier":"sram",'
               '"card":1,"rows":{"count":10,"ranges":[[0,10]]}},{"tier":"dram","card":null,"rows":{"count":25,'
               '"ranges":[[10,30],[50,55]]}}],"backing_tier":"scm","dram_cache":{"bytes":4096,"policy":"lru"},'
               '"page_layout":{"kind":"id-order"},"predicted_hit_rate":{"sram":0.5,"dram":0.3,"dram_cache":0.1,'
               '"scm":0.1},"explain":{}}}}')


def test_plan_from_the_landed_version_loads(tmp_path):
    from sdm.core.spec import TableSpec
    from sdm.runtime.store_placement import placement_from_plan

    path = tmp_path / "old.json"
    path.write_text(LANDED_PLAN)
    plan = Plan.load(path)
    tp = plan.table("a")
    assert [(p.tier, p.card, p.rows.count) for p in tp.placements] == [("sram", 1, 10), ("dram", None, 25)]
    assert tp.dram_cache_bytes == 4096 and plan.summary["latency_s"] == 1e-4
    place = placement_from_plan(path, [TableSpec("a", 100, 4)])["a"]
    assert place.accel_ids.tolist() == list(range(10)) and place.dram_pinned_ids.size == 25
    again = Plan.load(plan.save(tmp_path / "again.json"))
    assert again.table("a").placements[1].rows.to_ids().tolist() == tp.placements[1].rows.to_ids().tolist()


def test_plan_bad_files(tmp_path):
    from sdm.core.atomic_file import MissingFileError

    with pytest.raises(InvalidInputError, match="does not exist"):
        Plan.load(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError):                    # the one behaviour for a missing file
        Plan.load(tmp_path / "nope.json")
    with pytest.raises(MissingFileError):
        Profile.load(tmp_path / "nope.npz")
    with pytest.raises(InvalidInputError, match="directory"):  # nothing created where it is missing
        _plan(tmp_path).save(tmp_path / "no" / "dir" / "p.json")
    assert not (tmp_path / "no").exists()
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(StoreFormatError, match="not JSON"):
        Plan.load(tmp_path / "x.json")
    path = _plan(tmp_path).save(tmp_path / "p.json")
    doc = json.loads(path.read_text())
    doc["version"] = 99
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreFormatError, match="version 99"):
        Plan.load(path)
    doc["version"] = 1
    doc["tables"]["t0"]["placements"][0]["rows"]["count"] = 11
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match="t0.*holds 10 rows"):
        Plan.load(path)
    with pytest.raises(InvalidInputError, match="no table 'zz'"):
        _plan(tmp_path).table("zz")


def test_model_spec_forms(tmp_path):
    m = parse_dlrm_list("1460-583-10131227:64")
    assert [t.num_rows for t in m.tables] == [1460, 583, 10131227] and m.tables[0].dim == 64
    m2 = load_model("10-20:8:int8:2.5")
    assert m2.tables[1].row_format == "int8" and m2.tables[1].pooling_factor == 2.5
    f = tmp_path / "m.toml"
    f.write_text('name = "rmc"\ndim = 32\n[[table]]\nname = "user"\nrows = 100\ndim = 128\n'
                 '[[group]]\nprefix = "ad"\ncount = 3\nrows = 50\n')
    m3 = load_model(str(f))
    assert m3.name == "rmc" and [t.name for t in m3.tables] == ["user", "ad0", "ad1", "ad2"]
    assert m3.tables[0].dim == 128 and m3.tables[1].dim == 32
    j = tmp_path / "m.json"
    j.write_text(json.dumps(m3.as_dict()))
    assert load_model(str(j)).tables == m3.tables


@pytest.mark.parametrize("arg,msg", [("12-x-3:4", "bad row count"), ("10:0", "dim must be a whole number >= 1"),
                                     ("missing.toml", "does not exist"), ("10-20:8:fp8", "unknown row format")])
def test_model_spec_errors(arg, msg):
    with pytest.raises(InvalidInputError, match=msg):
        load_model(arg)


def test_model_spec_bad_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[[table]]\nname = 'a'\n")
    with pytest.raises(InvalidInputError, match=r"table\[0\]: missing 'rows'"):
        load_model(str(f))
    f.write_text("[[table]\n")
    with pytest.raises(InvalidInputError, match="cannot parse"):
        load_model(str(f))


@pytest.mark.parametrize("kwargs, needle", [
    (dict(num_rows=2.5), "num_rows must be a whole number >= 1, got 2.5"),
    (dict(num_rows="many"), "num_rows must be a whole number"),
    (dict(num_rows=None), "num_rows must be a whole number"),
    (dict(dim=True), "dim must be a whole number"),
    (dict(pooling_factor=float("nan")), "pooling_factor must be a finite number"),
    (dict(pooling_factor="x"), "pooling_factor must be a finite number"),
    (dict(pooling_factor=0), "pooling_factor must be > 0"),
])
def test_table_spec_bad_fields_are_named(kwargs, needle):
    args = dict(name="emb", num_rows=10, dim=4) | kwargs
    with pytest.raises(InvalidInputError, match=f"table 'emb': {needle}"):
        TableSpec(**args)


def test_table_spec_normalises_numbers():
    t = TableSpec("emb", np.int64(10), 4.0, pooling_factor=np.float32(2))
    assert type(t.num_rows) is int and type(t.dim) is int and type(t.pooling_factor) is float
    assert t.size_bytes == 160 and row_bytes(4, "int8") == 12
    with pytest.raises(InvalidInputError, match="dim must be a whole number >= 1"):
        row_bytes(-3)


def test_row_ids_must_be_integers():
    # a float id is refused by name rather than truncated (1.7 is not row 1)
    with pytest.raises(InvalidInputError, match="RowSet.from_ids: row ids must be integers, got dtype float64"):
        RowSet.from_ids(np.array([1.7, 2.0]))
    rs = RowSet(ranges=[[0, 10]])
    with pytest.raises(InvalidInputError, match="must be integers"):
        rs.contains(np.array([0.5]))
    tp = TablePlan("t0", 100, 4, "fp32", 16, placements=[TierPlacement("dram", None, rs)])
    with pytest.raises(InvalidInputError, match="table 't0': tier_of row ids must be integers"):
        tp.tier_of(np.array([3.0]))
    assert tp.tier_of(np.array([3, 50], dtype=np.int32))[0].tolist() == [2, 3]
    assert RowSet.from_ids([]).count == 0          # an empty list has no dtype to refuse
