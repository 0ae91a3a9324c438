"""The store's files (store.json, placement/), the create keywords' names, the modelled times the
lookup path charges, and the cost of the first validation."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.core.spec import TableSpec
from sdm.hardware.platform import HOST_QUEUE_DEPTH
from sdm.hardware.server import hardware
from sdm.runtime.embedding_store import BagOptions, EmbeddingStore

SPECS = [TableSpec("a", 500, 8), TableSpec("b", 300, 4, row_format="fp16")]
# hot rows of "a": a profile, so that placement/ holds row_order and hot_order arrays
PROFILE = {"a": np.bincount(np.random.default_rng(0).zipf(1.3, 2000) % 500, minlength=500)}
# the keys the landed version (format version 1) writes; a change here breaks old readers
# (plus the two keys old readers ignore: the document's xxh3_64 and each table's array checksums)
TOP_KEYS = {"format", "version", "hardware", "queue_depth", "page_bytes", "ways", "admission", "page_admit", "tables",
            "xxh3_64"}
TABLE_KEYS = {"spec", "options", "dram_cache_bytes", "policy", "checksums"}
ARRAY_KEYS = {"accel_ids", "dram_pinned_ids", "static_hot_ids", "row_order", "hot_order"}


def _create(path, **kw):
    gen = np.random.default_rng(1)
    w = {"a": gen.standard_normal((500, 8)).astype(np.float32), "b": gen.standard_normal((300, 4)).astype(np.float32)}
    return EmbeddingStore.create(path, SPECS, weights=w, dram_cache_bytes=20000, profile=PROFILE,
                                 options={"b": BagOptions("mean", True, 3)}, **kw)


def test_store_json_keeps_the_version_1_format(tmp_path):
    _create(tmp_path / "s").close()
    meta = json.loads((tmp_path / "s" / "store.json").read_text())
    assert set(meta) == TOP_KEYS and meta["format"] == "sdm-embedding-store" and meta["version"] == 1
    a, b = meta["tables"]
    assert {"row_order", "hot_order"} <= set(a)                    # the profiled table's arrays
    for k, entry in enumerate(meta["tables"]):
        assert TABLE_KEYS <= set(entry) and set(entry) - TABLE_KEYS <= ARRAY_KEYS
        assert set(entry["checksums"]) == set(entry) - TABLE_KEYS
        for key in set(entry) - TABLE_KEYS:
            assert entry[key] == f"placement/{k}.{key}.npy" and (tmp_path / "s" / entry[key]).is_file()
    assert b["options"] == {"mode": "mean", "include_last_offset": True, "padding_idx": 3}
    assert b["spec"]["row_format"] == "fp16"
    assert not list((tmp_path / "s").glob("*.tmp"))                 # written at a temporary name, then renamed


def test_store_json_without_the_later_keys_opens_with_their_defaults(tmp_path):
    store = _create(tmp_path / "s")
    idx, off = torch.tensor([1, 2, 3, 299, 7]), torch.tensor([0, 2])
    want = store.lookup("a", idx, off)
    store.close()
    f = tmp_path / "s" / "store.json"
    meta = json.loads(f.read_text())
    del meta["admission"], meta["page_admit"], meta["xxh3_64"]   # as the landed version wrote it
    f.write_text(json.dumps(meta))
    with EmbeddingStore.open(tmp_path / "s") as again:
        assert again.settings.admission == "auto" and again.settings.page_admit == "auto"
        assert torch.equal(again.lookup("a", idx, off), want)
        assert again.bag_options("b") == BagOptions("mean", True, 3)
        assert np.array_equal(again.placement["a"].row_order, store.placement["a"].row_order)


@pytest.mark.parametrize("change, match", [
    (lambda m: m["tables"][1].pop("spec"), r"tables\[1\]: missing key\(s\) \['spec'\]"),
    (lambda m: m["tables"][0].update(row_order="placement/missing.npy"), r"tables\[0\].row_order: expected"),
    (lambda m: m["tables"][0]["options"].update(colour="red"), r"tables\[0\].options: unknown key\(s\) \['colour'\]"),
    (lambda m: m.update(tables={"a": 1}), r"tables must be a list, got dict"),
    (lambda m: m.update(version=2), r"has format version 2; this sdm reads version 1"),
    (lambda m: m.update(ways="many"), r"bad store settings"),
])
def test_a_damaged_store_json_is_a_format_error(tmp_path, change, match):
    _create(tmp_path / "s").close()
    f = tmp_path / "s" / "store.json"
    meta = json.loads(f.read_text())
    meta.pop("xxh3_64")   # an unchecksummed file (as older versions wrote): the field checks must catch it
    change(meta)
    f.write_text(json.dumps(meta))
    with pytest.raises(StoreFormatError, match=match):
        EmbeddingStore.open(tmp_path / "s")


def test_page_layout_keyword_and_its_deprecated_name(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # the new name warns about nothing
        with _create(tmp_path / "new", page_layout="id") as s:
            assert s.placement["a"].row_order is None
    with pytest.warns(DeprecationWarning, match=r"layout=.*deprecated.*page_layout="):
        old = _create(tmp_path / "old", layout="id")
    with old:
        assert old.placement["a"].row_order is None                  # same meaning as page_layout="id"
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidInputError, match="disagree"):
        _create(tmp_path / "both", layout="id", page_layout="hot")
    assert not (tmp_path / "both").exists()
    with _create(tmp_path / "hot", page_layout="hot") as s:             # profile given: hottest first
        assert s.placement["a"].row_order[0] == int(np.argmax(PROFILE["a"]))


def test_modelled_times_are_the_device_models(tmp_path):
    """The lookup path charges exactly what the device model says, call after call."""
    hw = hardware("host-nand")
    spec = TableSpec("t", 1000, 16)
    with EmbeddingStore.create(tmp_path / "c", [spec], weights=None, dram_cache_bytes=10**6) as store:
        store.prefetch({"t": np.arange(1000)})
        store.reset_stats()
        idx, off = torch.arange(0, 37), torch.tensor([0, 5])
        store.lookup("t", idx, off)
        one = float(hw.host.dram.read_time_s(37, spec.row_bytes, HOST_QUEUE_DEPTH))
        assert store.stats()["tables"]["t"]["tiers"]["dram"]["modelled_s"] == one
        store.lookup("t", idx, off)
        assert store.stats()["tables"]["t"]["tiers"]["dram"]["modelled_s"] == one + one
    with EmbeddingStore.create(tmp_path / "u", [spec], weights=None, dram_cache_bytes=0) as store:
        rows_per_page = 4096 // spec.row_bytes
        idx = torch.tensor([0, 1, rows_per_page, 3 * rows_per_page + 2])     # 3 distinct pages
        store.lookup("t", idx, torch.tensor([0]))
        scm = store.stats()["tables"]["t"]["tiers"]["scm"]
        assert scm["reads"] == 3 and scm["modelled_s"] == float(hw.scm.read_time_s(3, 4096, 32))


def test_first_validation_needs_no_jit(tmp_path):
    """The first lookup's validation is plain numpy: it loads no numba (a ~0.5 s import + load)."""
    code = (
        "import sys, time, torch\n"
        "from sdm.runtime.pooling import validate\n"
        "t = time.perf_counter()\n"
        "validate('t', 1000, torch.randint(0, 1000, (4096,)), torch.arange(0, 4096, 32))\n"
        "assert 'numba' not in sys.modules, 'validate imported numba'\n"
        "print(time.perf_counter() - t)\n"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 0.1
