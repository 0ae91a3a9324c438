#!/usr/bin/env python
"""Fault injection against the SCM page store: flip bytes and fields of its metadata and files, and
count what happens. Prints, per kind of fault: tried, caught (an sdm error), named (the error names the
store and the table, record or page), harmless (every row still right, no error), silent (a wrong row
with no error), raw (a non-sdm exception), crash (the process died: signal or abort), shrunk (a data
file got shorter than the fault left it), verify_missed (the scrub called a store clean that open
refused). Target: 0 silent, 0 raw, 0 crash, 0 shrunk, 0 verify_missed.

  python tools/fault_inject.py                    # 40 random trials per random kind, every field kind
  python tools/fault_inject.py --per-kind 200 --seed 3 --json

Stores: "v2raw" (no compression), "v2zstd" (zstd, a row_order table, an update), "v1" (the store the
landed version wrote, tests/data/pagestore_v1: unsealed records, bound-checked only); EmbeddingStores
"estore" (store.json under its xxh3_64, checksummed placement arrays of every kind) and
"estore_legacy" (the same files without any checksum, as version 1 first wrote them: bounds alone),
for the kinds store_json_flip, placement_flip (random bit flips) and store_json_field (every field of
store.json set to bad values, re-sealed under a valid checksum). Each trial runs
in a worker process on a fresh copy of the store; a worker that dies is counted as a crash and
replaced, so one crash costs one trial, not the run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
V1_FIXTURE = ROOT / "tests" / "data" / "pagestore_v1"
TEMPLATES = ("v2raw", "v2zstd", "v1")
RANDOM_KINDS = ("record_flip", "pt_flip", "slot_flip", "delta_flip", "settings_flip", "version_flip", "data_flip",
                "truncate", "lmdb_file_flip")
FIELD_KINDS = ("record_field", "pt_field", "settings_field", "store_json_field", "scm_record_field")
STORE_TEMPLATES = ("estore", "estore_legacy")
STORE_RANDOM_KINDS = ("store_json_flip", "placement_flip")
COLUMNS = ("tried", "caught", "named", "harmless", "silent", "raw", "crash", "shrunk", "verify_missed")


# ---- the parent: trials, workers, the table ------------------------------------------------------
def build_templates(root: Path) -> None:
    """The stores every trial copies (fresh per run, in the format this sdm writes; v2zstd's update
    leaves a delta page and a delta-log record for delta_flip)."""
    import numpy as np

    from sdm.tiers.pagestore import PageStore

    rng = np.random.default_rng(0)
    w = rng.standard_normal((3000, 8)).astype(np.float32)
    with PageStore.create(root / "v2raw") as st:
        st.add_table("a", w)
        st.add_table("wide", rng.standard_normal((40, 1500)).astype(np.float32))  # rows wider than a page
    with PageStore.create(root / "v2zstd", compression="zstd") as st:
        st.add_table("a", np.round(w, 1))
        st.add_table("b", (np.arange(500 * 24) % 251).astype(np.uint8).reshape(500, 24),
                     row_order=np.arange(500)[::-1].copy())
        st.update_rows("a", np.array([3, 2999]), np.round(w[[0, 1]], 1) + 1)
    shutil.copytree(V1_FIXTURE, root / "v1")
    build_store_templates(root)


def build_store_templates(root: Path) -> None:
    """An EmbeddingStore with every kind of placement array (table b's added by hand, re-sealed), and
    its copy with every checksum removed."""
    import numpy as np
    import xxhash

    from sdm.core.atomic_file import write_json
    from sdm.core.spec import TableSpec
    from sdm.runtime.embedding_store import EmbeddingStore

    rng = np.random.default_rng(1)
    path = root / "estore"
    profile = {"a": np.bincount(rng.zipf(1.3, 2000) % 500, minlength=500)}
    w = {"a": rng.standard_normal((500, 8)).astype(np.float32), "b": rng.standard_normal((300, 4)).astype(np.float32)}
    EmbeddingStore.create(path, [TableSpec("a", 500, 8), TableSpec("b", 300, 4, row_format="fp16")], hardware=None,
                          weights=w, dram_cache_bytes=20000, profile=profile).close()
    meta = json.loads((path / "store.json").read_text())
    meta.pop("xxh3_64")
    entry = meta["tables"][1]
    entry["policy"] = "static"
    for key, ids in {"accel_ids": [1, 5, 7], "dram_pinned_ids": [2, 3, 299], "static_hot_ids": [9, 8, 4],
                     "hot_order": [0, 4, 8]}.items():
        np.save(path / f"placement/1.{key}.npy", np.array(ids, np.int64))
        entry[key] = f"placement/1.{key}.npy"
        entry["checksums"][key] = xxhash.xxh3_64_hexdigest((path / entry[key]).read_bytes())
    write_json(path / "store.json", meta, checksum=True)
    legacy = root / "estore_legacy"
    shutil.copytree(path, legacy)
    for e in meta["tables"]:
        e.pop("checksums")
    (legacy / "store.json").write_text(json.dumps(meta, indent=1))


def field_trials() -> list[dict]:
    """Every field of a table record, of a page-table entry and of the settings, each set to values
    a bug or a flip could give, re-sealed so the checksum passes: what the bounds checks must catch."""
    out = []
    ints = ["+1", "-1", "0", "-5", "x2", "2**31", "true", "str", "null", "/2"]
    rec_fields = {"name": ["str", "empty", "other"], "table_id": ["str", "other"], "num_rows": ints,
                  "dim": ints, "dtype": ["<f8", "<f2", "|u1", "<i4", ">f4", "O", "bogus", "null"],
                  "page_bytes": ints, "rows_per_page": ints, "num_pages": ints,
                  "compression": ["null", "zstd", "lz4"], "data_file": ["other", "str", "../x"],
                  "committed_bytes": ints + ["-512", "+512"], "dead_pages": ints, "has_row_order": ["not", "1"],
                  "delta_pages": ints,
                  "_drop": ["dead_pages", "dim"], "_add": ["extra"]}
    for t in TEMPLATES:
        for f, muts in rec_fields.items():
            for m in muts:
                out.append({"template": t, "kind": "record_field", "field": f, "mut": m})
        for f, muts in {"offset": ["+512", "-512", "+4096", "other", "2**40", "x2"],
                        "length": ["+1", "-1", "0", "2**30", "2**32-1", "x2", "/2"],
                        "flags": ["+1", "2", "0", "1"], "checksum": ["+1", "0"]}.items():
            for m in muts:
                for page in ("first", "last"):
                    out.append({"template": t, "kind": "pt_field", "field": f, "mut": m, "page": page})
        for f, muts in {"page_bytes": ["x2", "/2", "+1", "0", "str"], "io_align_bytes": ["512", "4096", "+1", "0"],
                        "compression": ["null", "zstd", "lz4"], "device": ["bogus", "nand", "null"],
                        "device_spec": ["null", "str", "bogus_field"], "_drop": ["page_bytes"]}.items():
            for m in muts:
                out.append({"template": t, "kind": "settings_field", "field": f, "mut": m})
    return out + store_field_trials()


def store_field_trials() -> list[dict]:
    """Every field of the estore template's store.json, each set to each of STORE_BAD (re-sealed)."""
    from fault_worker import STORE_BAD, STORE_LEGAL, store_fields

    with tempfile.TemporaryDirectory() as tmp:   # the field list of the template, built the same way
        build_store_templates(Path(tmp))
        meta = json.loads((Path(tmp) / "estore" / "store.json").read_text())
    # and the page store's record under an EmbeddingStore: dtype/dim swapped under a valid seal, the
    # case the page store alone cannot see (a width-preserving dtype swap), caught against store.json
    scm = [{"template": t, "kind": "scm_record_field", "field": f, "mut": m} for t in STORE_TEMPLATES
           for f, muts in {"dtype": ["<f8", "<f2", "|u1", "<i4", ">f4", "<u2", "<i2"], "dim": ["+1", "-1", "x2", "/2"],
                           "num_rows": ["+1", "-1"]}.items() for m in muts]
    return scm + [{"template": "estore", "kind": "store_json_field", "field": fp, "mut": m}
                  for fp in store_fields(meta) for m in STORE_BAD
                  if isinstance(m, (list, dict)) or (*fp[-2:], m) not in STORE_LEGAL]


def random_trials(per_kind: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"template": TEMPLATES[i % len(TEMPLATES)], "kind": k, "seed": rng.randrange(2**32)}
            for k in RANDOM_KINDS for i in range(per_kind)] + [
        {"template": STORE_TEMPLATES[i % len(STORE_TEMPLATES)], "kind": k, "seed": rng.randrange(2**32)}
        for k in STORE_RANDOM_KINDS for i in range(per_kind)]


class Worker:
    """A child process running trials from stdin; restarted when it dies."""

    def __init__(self, templates: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", str(templates)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

    def run(self, trial: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(trial) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except BrokenPipeError:
            line = ""
        if line:
            return json.loads(line)
        rc = self.proc.wait()
        return {"outcome": "crash", "detail": f"worker died (returncode {rc})"}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def run_trials(trials: list[dict]) -> tuple[dict, list[dict]]:
    """Figures per kind, and the trials that went wrong (silent, raw, crash, shrunk, verify_missed)."""
    figures: dict[str, dict] = {}
    bad = []
    with tempfile.TemporaryDirectory(prefix="sdm_fault_") as tmp:
        templates = Path(tmp) / "templates"
        templates.mkdir()
        build_templates(templates)
        worker = Worker(templates)
        try:
            for trial in trials:
                res = worker.run(trial)
                if res["outcome"] == "crash":
                    worker = Worker(templates)
                key = trial["kind"] + (" (no checksums)" if trial["template"] == "estore_legacy" else "")
                row = figures.setdefault(key, dict.fromkeys(COLUMNS, 0))
                row["tried"] += 1
                row[res["outcome"]] += 1
                row["named"] += bool(res.get("named"))
                row["shrunk"] += bool(res.get("shrunk"))
                row["verify_missed"] += bool(res.get("verify_missed"))
                if res["outcome"] in ("silent", "raw", "crash") or res.get("shrunk") or res.get("verify_missed"):
                    bad.append({**trial, **res})
        finally:
            worker.close()
    return figures, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-kind", type=int, default=40, help="random trials per random kind (default 40)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="all", help="comma-separated kinds, or all")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", metavar="TEMPLATES", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        from fault_worker import serve  # noqa: PLC0415 - the worker's half lives beside this file

        return serve(Path(args.worker))
    trials = field_trials() + random_trials(args.per_kind, args.seed)
    if args.kinds != "all":
        want = set(args.kinds.split(","))
        trials = [t for t in trials if t["kind"] in want]
    figures, bad = run_trials(trials)
    if args.json:
        print(json.dumps({"figures": figures, "bad": bad}, indent=2))
    else:
        sys.path.insert(0, str(ROOT))
        from sdm.core.text_table import text_table

        rows = [(k, *(v[c] for c in COLUMNS)) for k, v in figures.items()]
        total = [sum(v[c] for v in figures.values()) for c in COLUMNS]
        print(text_table(("kind", *COLUMNS), rows + [("total", *total)]))
        for b in bad[:20]:
            print("BAD:", json.dumps(b))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
