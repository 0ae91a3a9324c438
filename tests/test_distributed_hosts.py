"""Multi-host planning: tables and column slices to hosts, the host plan file, each rank's store.
No processes, no torchrec: these run everywhere."""
from __future__ import annotations

import numpy as np
import pytest

import sdm
from sdm.core.errors import InfeasibleError, InvalidInputError, StoreFormatError
from sdm.core.spec import TableSpec
from sdm.distributed.rank_store import model_rows, open_rank_store, store_share
from sdm.placement.host_plan import HostPlan, plan_hosts
from sdm.placement.hosts import assign_hosts, hosts_needed


def small_host(scm_bytes: int):
    return sdm.hardware("host-nand", **{"scm.capacity_bytes": scm_bytes, "scm_count": 1})


def columns_covered(shards, spec):
    cuts = sorted((s.col_start, s.col_stop) for s in shards if s.table == spec.name)
    assert cuts[0][0] == 0 and cuts[-1][1] == spec.dim
    assert all(b == c for (_, b), (c, _) in zip(cuts, cuts[1:]))


def test_table_wise_balances_bytes_and_lookups():
    specs = [TableSpec(f"t{i}", 1000 * (i + 1), 16) for i in range(6)]
    a = assign_hosts(specs, "host-nand", 3, sharding="table")
    assert all(s.whole for s in a.shards) and len(a.shards) == 6
    assert sum(a.bytes_per_host()) == sum(s.size_bytes for s in specs)      # shares add up to the model
    loads = a.bytes_per_host()
    assert max(loads) - min(loads) <= 2 * 1000 * 16 * 4 + 1   # 6+1, 5+2, 4+3 thousand rows


def test_hot_small_tables_are_spread():
    specs = [TableSpec("big0", 100_000, 16), TableSpec("big1", 100_000, 16),
             TableSpec("hot0", 100, 16), TableSpec("hot1", 100, 16)]
    a = assign_hosts(specs, "host-nand", 2, lookups={"big0": 1, "big1": 1, "hot0": 1e6, "hot1": 1e6}, sharding="table")
    host_of = {s.table: s.host for s in a.shards}
    assert host_of["hot0"] != host_of["hot1"] and host_of["big0"] != host_of["big1"]
    assert a.lookups_per_host()[0] == pytest.approx(a.lookups_per_host()[1])


def test_a_table_bigger_than_a_host_is_cut_into_column_slices():
    spec = TableSpec("wide", 10_000, 32)                        # 1.28 MB
    hw = small_host(700_000)
    with pytest.raises(InfeasibleError, match="fit on none"):
        assign_hosts([spec], hw, 2, sharding="table")
    a = assign_hosts([spec], hw, 2)
    assert len(a.shards) == 2 and {s.host for s in a.shards} == {0, 1}
    columns_covered(a.shards, spec)
    assert all(b <= 700_000 for b in a.bytes_per_host())
    assert sum(a.bytes_per_host()) == spec.size_bytes
    assert hosts_needed([spec], hw) == 2
    assert hosts_needed([spec], small_host(400_000)) == 4


def test_column_sharding_and_hosts_per_hardware_respect_each_host():
    specs = [TableSpec(f"t{i}", 2000, 12) for i in range(3)]
    a = assign_hosts(specs, [small_host(10**6), small_host(10**5)], 2, sharding="column")
    for s in specs:
        columns_covered(a.shards, s)
    assert a.bytes_per_host()[1] <= 10**5 and sum(a.bytes_per_host()) == sum(s.size_bytes for s in specs)
    assert hosts_needed(specs, small_host(50_000)) == 6          # 288 kB of rows / 50 kB hosts


def test_bad_input_is_refused():
    specs = [TableSpec("t0", 10, 4)]
    with pytest.raises(InvalidInputError, match="sharding"):
        assign_hosts(specs, "host-nand", 2, sharding="row")
    with pytest.raises(InvalidInputError, match="hosts"):
        assign_hosts(specs, "host-nand", 0)
    with pytest.raises(InvalidInputError, match="unknown tables"):
        assign_hosts(specs, "host-nand", 2, lookups={"nope": 1.0})
    with pytest.raises(InvalidInputError, match="3 hardware specs"):
        assign_hosts(specs, ["host-nand"] * 3, 2)
    with pytest.raises(InfeasibleError, match="int8"):
        assign_hosts([TableSpec("q", 10_000, 32, "int8")], small_host(200_000), 2)


def test_host_plan_file_round_trip_and_checks(tmp_path):
    specs = [TableSpec("a", 300, 8), TableSpec("b", 500, 10)]
    hp = plan_hosts(specs, "host-nand", 2, sharding="column", model_name="m")
    path = hp.save(tmp_path / "m.hosts.json")
    back = HostPlan.load(path, host=1)
    assert back.num_hosts == 2 and back.tables == hp.tables
    assert [s.to_json() for s in back.section(1).shards] == [s.to_json() for s in hp.section(1).shards]
    with pytest.raises(InvalidInputError, match="hosts 0..1"):
        back.section(2)
    back.sections[0].shards.pop()                              # a hole in table a's columns
    with pytest.raises(StoreFormatError, match="served by no host"):
        back.check()


def test_each_rank_store_holds_only_its_share(tmp_path):
    specs = [TableSpec(f"t{i}", 400 + 100 * i, 8, pooling_factor=2.0) for i in range(3)]
    from sdm.placement.hotness import TableHotness

    rng = np.random.default_rng(0)
    hot = [TableHotness(s.name, s.num_rows, np.arange(50), rng.integers(1, 100, 50).astype(float), num_samples=100)
           for s in specs]
    hp = plan_hosts(specs, "host-nand", 2, hotness=hot, sharding="column")
    hp.save(tmp_path / "hosts.json")
    assert all(sec.plan is not None for sec in hp.sections)
    total = 0
    for r in range(2):
        sec = HostPlan.load(tmp_path / "hosts.json", host=r).section(r)
        store, reopened = open_rank_store(hp, r, tmp_path / "stores")
        with store:
            share = store_share(store)
            assert not reopened and sorted(share["tables"]) == sorted(s.name for s in sec.shards)
            assert share["row_bytes"] == sec.size_bytes
            s0 = sec.shards[0]
            got = store.lookup(s0.name, np.arange(s0.num_rows), np.arange(s0.num_rows)).numpy()
            want = model_rows(s0.table, 0, s0.num_rows, s0.table_dim, s0.num_rows)[:, s0.col_start:s0.col_stop]
            assert np.array_equal(got, want)
        total += share["row_bytes"]
        store, reopened = open_rank_store(hp, r, tmp_path / "stores")   # complete: reopened, not rebuilt
        store.close()
        assert reopened
    assert total == sum(s.size_bytes for s in specs)
    with pytest.raises(InvalidInputError, match="remove"):
        open_rank_store(plan_hosts(specs, "host-nand", 2, sharding="table"), 0, tmp_path / "stores")


def test_generated_rows_do_not_depend_on_the_range_asked_for():
    whole = model_rows("t", 0, 100, 6, 100)
    assert np.array_equal(np.concatenate([model_rows("t", 0, 37, 6, 100), model_rows("t", 37, 100, 6, 100)]), whole)
    assert not np.array_equal(model_rows("u", 0, 100, 6, 100), whole)
    assert np.abs(whole).max() <= np.sqrt(1 / 100)


def test_cli_helpers_print_hosts_and_count_hosts_per_hardware(tmp_path):
    from sdm.placement.host_plan import format_host_plan
    from sdm.placement.hosts import hosts_per_hardware

    specs = [TableSpec(f"t{i}", 5000, 16) for i in range(4)]           # 320 kB each
    text = format_host_plan(plan_hosts(specs, small_host(700_000), 2, sharding="table"))
    assert "2 hosts" in text and "t0" in text and "0.500" in text
    rows = hosts_per_hardware(specs, [small_host(700_000), small_host(200_000), "host-nand"])
    assert [r["hosts"] for r in rows] == [2, 8, 1]      # 2 whole tables a host; halves of 160 kB; one big host
    rows = hosts_per_hardware([TableSpec("q", 10_000, 32, "int8")], [small_host(100_000)])
    assert rows[0]["hosts"] is None and "int8" in rows[0]["error"]
