"""The worker half of tools/fault_inject.py: applies one fault to a fresh copy of a store, then scrubs,
opens, reads every row, updates one row and reads again (an EmbeddingStore: scrubs, opens, looks up
every row), and says what happened (one JSON line per trial on stdout).
Run by fault_inject.py in a child process, so a crash here is counted, not fatal.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sys
import warnings
from pathlib import Path

import lmdb
import numpy as np

from sdm.core.errors import InvalidInputError, SdmError
from sdm.tiers.pagestore import PageStore
from sdm.tiers.record_seal import is_sealed, seal, unseal
from sdm.tiers.store_verify import verify_store

INT_MUTS = {"+1": lambda v: v + 1, "-1": lambda v: v - 1, "0": lambda v: 0, "-5": lambda v: -5,
            "x2": lambda v: v * 2, "2**31": lambda v: 2**31, "true": lambda v: True, "str": lambda v: "x",
            "null": lambda v: None, "/2": lambda v: v // 2, "-512": lambda v: v - 512, "+512": lambda v: v + 512,
            "2**40": lambda v: 2**40, "2**30": lambda v: 2**30, "2**32-1": lambda v: 2**32 - 1,
            "+4096": lambda v: v + 4096, "2": lambda v: 2, "1": lambda v: 1}


def _truth(path: Path) -> dict:
    with PageStore.open(path) as st:
        return {t: st.read_rows(t, np.arange(st.table_info(t).num_rows)) for t in st.tables}


def _data_files(path: Path) -> dict:
    d = path / "data"
    return {f: os.path.getsize(d / f) for f in sorted(os.listdir(d))} if d.is_dir() else {}


def _flip(buf: bytearray, rng: random.Random) -> None:
    buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)


class Meta:
    """Direct LMDB access to a store copy, as a fault (not the store) would touch it."""

    def __init__(self, path: Path) -> None:
        self.env = lmdb.open(str(path / "meta.lmdb"), map_size=1 << 38)

    def keys(self, prefix: bytes) -> list[bytes]:
        with self.env.begin() as txn:
            return [bytes(k) for k, _ in txn.cursor() if bytes(k).startswith(prefix)]

    def get(self, key: bytes) -> bytes:
        with self.env.begin() as txn:
            return bytes(txn.get(key))

    def put(self, key: bytes, val: bytes) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key, val)

    def edit(self, key: bytes, change) -> None:
        """Apply `change(payload) -> payload` under the record's seal (re-sealed if it had one)."""
        raw = self.get(key)
        sealed = is_sealed(raw)
        payload, _ = unseal(key, raw, legacy_ok=True)
        new = change(payload)
        self.put(key, seal(key, new) if sealed else new)

    def close(self) -> None:
        self.env.close()


def _edit_json(meta: Meta, key: bytes, field: str, mut: str, other: dict) -> None:
    def change(payload: bytes) -> bytes:
        doc = json.loads(payload)
        if field == "_drop":
            doc.pop(mut, None)
        elif field == "_add":
            doc[mut] = 1
        elif mut == "other":
            doc[field] = other[field]
        elif mut == "empty":
            doc[field] = ""
        elif mut == "not":
            doc[field] = not doc[field]
        elif mut in INT_MUTS and isinstance(doc.get(field), int) and not isinstance(doc.get(field), bool):
            doc[field] = INT_MUTS[mut](doc[field])
        elif mut == "null":
            doc[field] = None
        elif mut == "str":
            doc[field] = "tdeadbeef0000" if field == "table_id" else ("data/x.pages" if field == "data_file" else "zz")
        elif mut == "bogus_field":
            doc[field] = {**doc[field], "bogus": 1}
        elif mut in ("512", "4096"):
            doc[field] = int(mut)
        else:
            doc[field] = mut
        return json.dumps(doc).encode()

    meta.edit(key, change)


def _edit_page_entry(meta: Meta, table_id: str, field: str, mut: str, page: str) -> None:
    from sdm.tiers.page_format import PAGE_ENTRY_DTYPE

    key = f"pt/{table_id}/0000000000".encode()

    def change(payload: bytes) -> bytes:
        pt = np.frombuffer(payload, dtype=PAGE_ENTRY_DTYPE).copy()
        i = 0 if page == "first" else len(pt) - 1
        bits = pt.dtype[field].itemsize * 8
        if mut == "other":
            v = int(pt["offset"][(i + 1) % len(pt)])
        else:
            v = INT_MUTS[mut](int(pt[field][i]))
        pt[field][i] = int(v) % (1 << bits)
        return pt.tobytes()

    meta.edit(key, change)


def apply_fault(path: Path, trial: dict) -> None:
    kind = trial["kind"]
    rng = random.Random(trial.get("seed", 0))
    if kind in ("data_flip", "truncate"):
        files = sorted((path / "data").iterdir())
        f = files[rng.randrange(len(files))]
        if kind == "truncate":
            os.truncate(f, rng.randrange(os.path.getsize(f)))
            return
        buf = bytearray(f.read_bytes())
        _flip(buf, rng)
        f.write_bytes(buf)
        return
    if kind == "lmdb_file_flip":
        f = path / "meta.lmdb" / "data.mdb"
        buf = bytearray(f.read_bytes())
        _flip(buf, rng)
        f.write_bytes(buf)
        return
    meta = Meta(path)
    try:
        recs = [json.loads(unseal(k, meta.get(k), legacy_ok=True)[0]) for k in meta.keys(b"table/")]
        if kind.endswith("_flip"):
            prefix = {"record_flip": b"table/", "pt_flip": b"pt/", "slot_flip": b"slot/", "delta_flip": b"delta/",
                      "settings_flip": b"store",
                      "version_flip": b"version"}[kind]
            keys = meta.keys(prefix) or meta.keys(b"pt/")
            if kind == "version_flip":
                keys = [b"version", b"format_version"]
            key = keys[rng.randrange(len(keys))]
            buf = bytearray(meta.get(key))
            _flip(buf, rng)
            meta.put(key, bytes(buf))
        elif kind == "record_field":
            _edit_json(meta, f"table/{recs[0]['name']}".encode(), trial["field"], trial["mut"], recs[1])
        elif kind == "pt_field":
            _edit_page_entry(meta, recs[0]["table_id"], trial["field"], trial["mut"], trial["page"])
        elif kind == "settings_field":
            _edit_json(meta, b"store", trial["field"], trial["mut"], {})
        else:
            raise ValueError(f"unknown kind {kind!r}")
    finally:
        meta.close()


def _named(exc: SdmError, path: Path) -> bool:
    store = getattr(exc, "store", None) or (str(path) if str(path) in str(exc) else None)
    what = any(getattr(exc, a, None) is not None for a in ("table", "record", "page"))
    return bool(store) and what


def attempt(path: Path, truth: dict) -> dict:
    """Scrub, open, read all, update one row, reopen, read all: what happened."""
    try:
        verify_ok = verify_store(path).ok
    except SdmError:
        verify_ok = False
    except Exception as exc:  # noqa: BLE001 - that is what is being counted
        return {"outcome": "raw", "detail": f"verify: {type(exc).__name__}: {exc}"}
    try:
        for round_ in range(2):
            with PageStore.open(path) as st:
                if st.tables != sorted(truth):
                    return {"outcome": "silent", "detail": f"tables {st.tables}"}
                for name, rows in truth.items():
                    got = st.read_rows(name, np.arange(len(rows)))
                    if not np.array_equal(got, rows):
                        bad = int((got != rows).any(axis=1).sum())
                        return {"outcome": "silent", "detail": f"table {name!r}: {bad} rows wrong"}
                if round_ == 0:
                    name = sorted(truth)[0]
                    st.update_rows(name, np.array([0]), truth[name][[0]])
    except InvalidInputError as exc:  # the store opened, then refused a row it holds: a row was lost
        return {"outcome": "caught", "named": any(f"table {n!r}" in str(exc) for n in truth),
                "detail": f"{type(exc).__name__}: {exc}"[:300]}
    except SdmError as exc:
        return {"outcome": "caught", "named": _named(exc, path), "verify_missed": verify_ok,
                "detail": f"{type(exc).__name__}: {exc}"[:300]}
    except Exception as exc:  # noqa: BLE001
        return {"outcome": "raw", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return {"outcome": "harmless"}


def serve(templates: Path) -> int:
    warnings.simplefilter("ignore")
    truth = {}
    work = templates.parent / "trial"
    for line in sys.stdin:
        trial = json.loads(line)
        t = trial["template"]
        estore = t.startswith("estore")
        scm = work / "scm" if estore else work
        if t not in truth:
            shutil.rmtree(work, ignore_errors=True)
            shutil.copytree(templates / t, work)
            truth[t] = _store_truth(work) if estore else _truth(work)
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(templates / t, work)
        (apply_store_fault if estore else apply_fault)(work, trial)
        before = _data_files(scm)
        res = (attempt_store if estore else attempt)(work, truth[t])
        after = _data_files(scm)
        # truncation of a file that is still there; a file the trial's update compacted away is gone
        # whole (its live pages moved to a new file), and the read-back above checks every row
        res["shrunk"] = any(f in after and after[f] < n for f, n in before.items())
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()
    return 0


# ---- EmbeddingStore files: store.json and placement/*.npy ------------------------------------------
# Templates "estore" (as this sdm writes it: store.json under its xxh3_64, array checksums) and
# "estore_legacy" (the same without any checksum, as the landed version 1 wrote it: bounds alone).
STORE_BAD = [None, True, -1, 0, 2**62, "x", 1.5, [], {}, "drop"]
# legal settings among STORE_BAD that change what a lookup returns: a different store, not damage
STORE_LEGAL = {("options", "include_last_offset", True), ("options", "padding_idx", 0),
               ("options", "padding_idx", -1)}


def store_fields(meta: dict) -> list[list]:
    """Key paths of every leaf of store.json but the header and checksums."""
    out = []
    for k, v in meta.items():
        if k == "tables":
            for i, e in enumerate(v):
                for ek, ev in e.items():
                    if isinstance(ev, dict) and ek != "checksums":
                        out += [["tables", i, ek, sk] for sk in ev]
                    else:
                        out.append(["tables", i, ek])
        elif k not in ("format", "version", "xxh3_64"):
            out.append([k])
    return out


def _store_truth(path: Path) -> dict:
    import torch

    from sdm.runtime.embedding_store import EmbeddingStore

    with EmbeddingStore.open(path) as st:
        return {s.name: st.lookup(s.name, torch.arange(s.num_rows), torch.arange(s.num_rows)).numpy()
                for s in st.specs}


def apply_store_fault(path: Path, trial: dict) -> None:
    from sdm.core.atomic_file import write_json

    rng = random.Random(trial.get("seed", 0))
    kind = trial["kind"]
    if kind == "store_json_flip":
        f = path / "store.json"
    elif kind == "placement_flip":
        files = sorted((path / "placement").glob("*.npy"))
        f = files[rng.randrange(len(files))]
    elif kind == "scm_record_field":   # the page store's table record, re-sealed: store.json must disagree
        meta = Meta(path / "scm")
        try:
            recs = [json.loads(unseal(k, meta.get(k), legacy_ok=True)[0]) for k in meta.keys(b"table/")]
            _edit_json(meta, f"table/{recs[0]['name']}".encode(), trial["field"], trial["mut"], recs[1])
        finally:
            meta.close()
        return
    elif kind == "store_json_field":
        meta = json.loads((path / "store.json").read_text())
        meta.pop("xxh3_64", None)
        *where, last = trial["field"]
        parent = meta
        for k in where:
            parent = parent[k]
        if trial["mut"] == "drop":
            parent.pop(last)
        else:
            parent[last] = trial["mut"]
        write_json(path / "store.json", meta, checksum=True)   # re-sealed: the bounds must catch it
        return
    else:
        raise ValueError(f"unknown kind {kind!r}")
    buf = bytearray(f.read_bytes())
    _flip(buf, rng)
    f.write_bytes(buf)


def attempt_store(path: Path, truth: dict) -> dict:
    """Scrub, open, read every row: what happened to an EmbeddingStore."""
    import torch

    from sdm.runtime.embedding_store import EmbeddingStore
    from sdm.runtime.store_scrub import scrub_store

    try:
        verify_ok = scrub_store(path).ok
    except Exception as exc:  # noqa: BLE001 - the scrub must report, never raise
        return {"outcome": "raw", "detail": f"verify: {type(exc).__name__}: {exc}"[:300]}
    try:
        with EmbeddingStore.open(path) as st:
            for s in st.specs:
                got = st.lookup(s.name, torch.arange(s.num_rows), torch.arange(s.num_rows)).numpy()
                if s.name not in truth or got.shape != truth[s.name].shape or not np.array_equal(got, truth[s.name]):
                    return {"outcome": "silent", "detail": f"table {s.name!r}: rows wrong"}
    except SdmError as exc:
        named = str(path) in str(exc) and bool(getattr(exc, "record", None) or "stored hardware" in str(exc)
                                              or "store.json" in str(exc))
        return {"outcome": "caught", "named": named, "verify_missed": verify_ok,
                "detail": f"{type(exc).__name__}: {exc}"[:300]}
    except Exception as exc:  # noqa: BLE001
        return {"outcome": "raw", "detail": f"{type(exc).__name__}: {exc}"[:300]}
    return {"outcome": "harmless"}
