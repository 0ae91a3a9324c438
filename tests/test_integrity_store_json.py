"""store.json and the placement arrays are not trusted: every byte flipped, every field set to values a
bug could write (under a valid checksum), every array damaged -> an sdm error naming the file (and
field), or a store whose every row is still right; never a raw KeyError/TypeError/UnicodeDecodeError,
never a silent wrong row."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import xxhash

from sdm.core.atomic_file import write_json
from sdm.core.errors import CorruptStoreFileError, SdmError, StoreFormatError
from sdm.core.spec import TableSpec
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.runtime.store_files import PLACEMENT_ARRAYS

SPECS = [TableSpec("a", 500, 8), TableSpec("b", 300, 4, row_format="fp16")]
PROFILE = {"a": np.bincount(np.random.default_rng(0).zipf(1.3, 2000) % 500, minlength=500)}
# arrays table b gets by hand, so that every kind of placement array is in the store
EXTRA_B = {"accel_ids": [1, 5, 7], "dram_pinned_ids": [2, 3, 299], "static_hot_ids": [9, 8, 4], "hot_order": [0, 4, 8]}


def _rows(store) -> dict:
    out = {}
    for s in store.specs:
        n = s.num_rows
        out[s.name] = store.lookup(s.name, torch.arange(n), torch.arange(n)).clone()
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A store with every placement array kind (hand-added ones for b, re-sealed), and its rows."""
    path = tmp_path_factory.mktemp("tpl") / "s"
    w = {"a": np.random.default_rng(1).standard_normal((500, 8)).astype(np.float32),
         "b": np.random.default_rng(2).standard_normal((300, 4)).astype(np.float32)}
    EmbeddingStore.create(path, SPECS, hardware=None, weights=w, dram_cache_bytes=20000, profile=PROFILE).close()
    meta = json.loads((path / "store.json").read_text())
    entry = meta["tables"][1]
    entry["policy"] = "static"
    for key, ids in EXTRA_B.items():
        rel = f"placement/1.{key}.npy"
        np.save(path / rel, np.array(ids, np.int64))
        entry[key] = rel
        entry["checksums"][key] = xxhash.xxh3_64_hexdigest((path / rel).read_bytes())
    meta.pop("xxh3_64")
    write_json(path / "store.json", meta, checksum=True)
    with EmbeddingStore.open(path) as st:
        assert st.verify().ok
        truth = _rows(st)
    return path, truth


def _outcome(path, truth) -> str:
    """"caught" (an sdm error naming the store's file), "harmless" (opens, every row right), or an
    assertion failure for a raw error or a wrong row."""
    try:
        with EmbeddingStore.open(path) as st:
            got = _rows(st)
    except SdmError as exc:
        # a store-file fault; or a well-formed name of a hardware preset this sdm does not know
        assert isinstance(exc, StoreFormatError) or "stored hardware" in str(exc), repr(exc)
        assert str(path) in str(exc), str(exc)
        return "caught"
    for name, rows in truth.items():
        assert torch.equal(got[name], rows), f"silent: table {name!r} has wrong rows"
    return "harmless"


def _copy(template, tmp_path, legacy=False):
    path = tmp_path / "s"
    shutil.copytree(template, path)
    if legacy:   # as a version without checksums wrote it: field bounds alone must hold
        meta = json.loads((path / "store.json").read_text())
        meta.pop("xxh3_64")
        for e in meta["tables"]:
            e.pop("checksums")
        (path / "store.json").write_text(json.dumps(meta, indent=1))
    return path


@pytest.mark.parametrize("legacy", [False, True], ids=["checksummed", "legacy"])
def test_every_byte_of_store_json_flipped(template, tmp_path, legacy):
    tpl, truth = template
    path = _copy(tpl, tmp_path, legacy)
    f = path / "store.json"
    clean = f.read_bytes()
    counts = {"caught": 0, "harmless": 0}
    for i in range(len(clean)):
        buf = bytearray(clean)
        buf[i] ^= 1 << (i % 8)
        f.write_bytes(bytes(buf))
        counts[_outcome(path, truth)] += 1
    f.write_bytes(clean)
    assert _outcome(path, truth) == "harmless"
    if not legacy:   # under the checksum every flip is caught
        assert counts["harmless"] == 0, counts
    assert counts["caught"] > 0.8 * len(clean), counts


BAD = [None, True, -1, 0, 2**62, "x", 1.5, [], {}]
# values among BAD that are legal settings which change what a lookup returns (the checksum is valid:
# such a store.json is a different store, not a damaged one)
LEGAL = {(("options", "include_last_offset"), True), (("options", "padding_idx"), 0),
         (("options", "padding_idx"), -1)}


def _field_paths(meta):
    """Every leaf of store.json but the header and checksums, as a key path."""
    out = []
    for k, v in meta.items():
        if k in ("format", "version", "xxh3_64"):
            continue
        if k == "tables":
            for i, e in enumerate(v):
                for ek, ev in e.items():
                    if isinstance(ev, dict) and ek != "checksums":
                        out += [("tables", i, ek, sk) for sk in ev]
                    else:
                        out.append(("tables", i, ek))
        else:
            out.append((k,))
    return out


def test_every_field_set_to_bad_values_under_a_valid_checksum(template, tmp_path):
    tpl, truth = template
    path = _copy(tpl, tmp_path)
    clean = json.loads((path / "store.json").read_text())
    clean.pop("xxh3_64")
    counts = {"caught": 0, "harmless": 0}
    fields = _field_paths(clean)
    assert len(fields) > 25
    for fp in fields:
        for bad in BAD + ["drop"]:
            meta = json.loads(json.dumps(clean))
            parent = meta
            for k in fp[:-1]:
                parent = parent[k]
            if bad == "drop":
                parent.pop(fp[-1])
            else:
                parent[fp[-1]] = bad
            write_json(path / "store.json", meta, checksum=True)
            if not isinstance(bad, (list, dict)) and (fp[-2:], bad) in LEGAL:   # a legal setting, different from the stored one: not damage
                continue
            counts[_outcome(path, truth)] += 1
    assert counts["caught"] > 0.8 * sum(counts.values()), counts


def test_field_errors_name_the_field(template, tmp_path):
    tpl, truth = template
    path = _copy(tpl, tmp_path)
    clean = json.loads((path / "store.json").read_text())
    clean.pop("xxh3_64")
    for change, record in [
        (lambda m: m["tables"][0]["spec"].update(dim=16), "store.json:tables[0].spec"),          # width mismatch
        (lambda m: m["tables"][1]["spec"].update(row_format="fp32"), "store.json:tables[1].spec"),  # same dim, other dtype
        (lambda m: m["tables"][1]["spec"].update(row_format="int8"), "store.json:tables[1].spec"),
        (lambda m: m["tables"][1]["spec"].update(num_rows=400), "placement/1.row_order.npy"),  # 300 ids
        (lambda m: m["tables"][0].update(dram_cache_bytes=2**60), "store.json:tables[0].dram_cache_bytes"),
        (lambda m: m["tables"][0].update(policy="nope"), "store.json:tables[0].policy"),
        (lambda m: m["tables"][0]["options"].update(mode="avg"), "store.json:tables[0].options.mode"),
        (lambda m: m["tables"][0]["options"].update(padding_idx=500), "store.json:tables[0].options.padding_idx"),
        (lambda m: m.update(ways=0), "store.json:ways"),
        (lambda m: m.update(queue_depth=True), "store.json:queue_depth"),
        (lambda m: m.update(admission="some"), "store.json:admission"),
        (lambda m: m["tables"][0].update(row_order="../../etc/passwd"), "store.json:tables[0].row_order"),
        (lambda m: m["tables"][1]["spec"].update(name="a"), "store.json:tables[1].spec.name"),
    ]:
        meta = json.loads(json.dumps(clean))
        change(meta)
        write_json(path / "store.json", meta, checksum=True)
        with pytest.raises(CorruptStoreFileError) as info:
            EmbeddingStore.open(path)
        assert info.value.record == record and str(path) in str(info.value), (record, str(info.value))


@pytest.mark.parametrize("legacy", [False, True], ids=["checksummed", "legacy"])
def test_every_placement_array_damaged(template, tmp_path, legacy):
    tpl, truth = template
    path = _copy(tpl, tmp_path, legacy)
    arrays = sorted((path / "placement").glob("*.npy"))
    assert {a.name.split(".")[1] for a in arrays} == set(PLACEMENT_ARRAYS)
    counts = {"caught": 0, "harmless": 0}
    rng = np.random.default_rng(3)
    for a in arrays:
        clean = a.read_bytes()
        for i in sorted(set(rng.integers(0, len(clean), 40).tolist()) | {0, 8, len(clean) - 1}):
            buf = bytearray(clean)
            buf[i] ^= 1 << int(rng.integers(8))
            a.write_bytes(bytes(buf))
            if not legacy:
                with pytest.raises(CorruptStoreFileError, match="checksum") as info:
                    EmbeddingStore.open(path)
                assert info.value.record == f"placement/{a.name}"
            counts[_outcome(path, truth)] += 1
        for bad in (clean[: len(clean) // 2], b"", np.zeros(3, np.float64), np.zeros((1, 3), np.int64),
                    np.array([0, 0, 1], np.int64), np.array([-1], np.int64), np.array([10**6], np.int64),
                    np.array([1, 2], ">i8")):
            if isinstance(bad, np.ndarray):
                np.save(a, bad)
            else:
                a.write_bytes(bad)
            counts[_outcome(path, truth)] += 1
        a.write_bytes(clean)
    assert _outcome(path, truth) == "harmless"
    if not legacy:
        assert counts["harmless"] == 0, counts


def test_verify_reports_store_file_damage(template, tmp_path):
    tpl, _ = template
    path = _copy(tpl, tmp_path)
    with EmbeddingStore.open(path) as st:
        report = st.verify()
        assert report.ok and report.store_json_ok and report.tables == 2 and report.arrays_checked == len(list((path / "placement").glob("*.npy")))
        assert report.pages.ok and report.pages.pages_checked > 0
        a = path / "placement" / "0.row_order.npy"
        buf = bytearray(a.read_bytes())
        buf[-3] ^= 4
        a.write_bytes(bytes(buf))
        report = st.verify()
        assert not report.ok and report.damage[0].record == "placement/0.row_order.npy"
        assert report.to_dict()["ok"] is False


def test_cli_verify_scrubs_an_embedding_store(template, tmp_path, capsys):
    from sdm.cli import main

    tpl, _ = template
    path = _copy(tpl, tmp_path)
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "store.json ok, 2 tables" in out and "clean" in out
    f = path / "store.json"
    f.write_bytes(f.read_bytes().replace(b'"dim": 8', b'"dim": 9'))
    assert main(["verify", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and not report["store_json_ok"] and report["pages"]["ok"]   # pages still scrubbed
    assert "checksum" in report["damage"][0]["message"] and report["damage"][0]["record"] == "store.json"
