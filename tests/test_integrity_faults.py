"""The fault-injection run (tools/fault_inject.py) as a test: every field of a table record, of a
page-table entry and of the store settings set to bad values, and random bit flips in each kind of
LMDB record, in the LMDB file itself and in the data files, and truncations, on format-2 stores
(raw, zstd) and on the format-1 store of the landed version. Each trial runs in a worker process, so
a crash is a counted failure, not a dead pytest.

Target: no crash, no raw (non-sdm) exception, no file shortened, no scrub that calls a refused store
clean, and no silent wrong row except the one kind no check can see: a table record whose dtype is
replaced by another of the same width ('<i4' or '>f4' for '<f4') *and re-sealed*, i.e. a writer bug,
not a flip (a flip in a sealed record is caught by its checksum; see test_integrity_errors)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAME_WIDTH_DTYPES = {"<i4", ">f4"}


def test_fault_injection_figures():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "fault_inject.py"), "--per-kind", "12", "--seed", "5",
                          "--json"], capture_output=True, text=True, timeout=900,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    doc = json.loads(out.stdout)
    figures, bad = doc["figures"], doc["bad"]
    unexplained = [b for b in bad if not (b["kind"] == "record_field" and b["field"] == "dtype"
                                          and b["mut"] in SAME_WIDTH_DTYPES and b["outcome"] == "silent")]
    assert unexplained == [], json.dumps(unexplained[:5], indent=1)
    assert len(bad) == 6  # the two same-width dtypes on each of the three stores
    for kind, row in figures.items():
        assert row["crash"] == row["raw"] == row["shrunk"] == row["verify_missed"] == 0, (kind, row)
        assert row["caught"] + row["harmless"] + row["silent"] == row["tried"] > 0, (kind, row)
        assert row["named"] >= row["caught"] - 3, (kind, row)  # a lost row (num_rows -1) is named by table only
    for kind in ("record_flip", "pt_flip", "slot_flip", "delta_flip", "truncate"):
        assert figures[kind]["caught"] == figures[kind]["tried"], (kind, figures[kind])
    assert set(figures) == {"record_field", "pt_field", "settings_field", "record_flip", "pt_flip", "slot_flip",
                            "delta_flip", "settings_flip", "version_flip", "data_flip", "truncate", "lmdb_file_flip",
                            # an EmbeddingStore's own files (with and without checksums), and the page
                            # store's record under one: store.json closes the same-width dtype case there
                            "store_json_field", "scm_record_field", "scm_record_field (no checksums)",
                            "store_json_flip", "store_json_flip (no checksums)", "placement_flip",
                            "placement_flip (no checksums)"}
    for kind in ("store_json_flip", "placement_flip", "scm_record_field", "scm_record_field (no checksums)"):
        assert figures[kind]["caught"] == figures[kind]["named"] == figures[kind]["tried"], (kind, figures[kind])
