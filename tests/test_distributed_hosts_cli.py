"""Issue 13: the host plan `sdm-plan plan --hosts N` writes is the one each rank opens: rank r reads
only its own section (and its Plan) and builds a store holding only its share; the shares add up to
the model. No processes, no torchrec."""
from __future__ import annotations

import numpy as np

from sdm.cli import main
from sdm.distributed.rank_store import model_rows, open_rank_store, store_share
from sdm.placement.host_plan import HostPlan


def test_cli_host_plan_opens_per_rank(tmp_path, capsys):
    from sdm.traces.generators import zipf_trace

    trace = tmp_path / "t.npz"
    zipf_trace([3000, 1200, 500], num_samples=500, pooling=3, seed=5).save(trace)
    out = tmp_path / "hosts.json"
    assert main(["plan", "--model", "3000-1200-500:12", "--trace", str(trace), "--hosts", "2", "--sharding",
                 "column", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    total = 0
    for r in range(2):
        hp = HostPlan.load(out, host=r)
        sec = hp.section(r)
        assert sec.plan is not None and hp.section(1 - r).plan is None      # only its own part is read
        store, reopened = open_rank_store(hp, r, tmp_path / "stores")
        with store:
            share = store_share(store)
            assert not reopened and sorted(share["tables"]) == sorted(s.name for s in sec.shards)
            assert share["row_bytes"] == sec.size_bytes
            s0 = sec.shards[-1]
            ids = np.arange(s0.num_rows)
            got = store.lookup(s0.name, ids, ids).numpy()
            want = model_rows(s0.table, 0, s0.num_rows, s0.table_dim, s0.num_rows)[:, s0.col_start:s0.col_stop]
            assert np.array_equal(got, want)
        total += share["row_bytes"]
    assert total == (3000 + 1200 + 500) * 12 * 4
