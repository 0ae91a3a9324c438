"""Hotness profiles of a trace: one `TableProfile` (sdm.placement.profile_table) per table, and the
profile file: one `.npz` (arrays + a JSON header), written atomically (sdm.core.atomic_file).
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdm.core.atomic_file import check_header, require_file, write_atomically
from sdm.core.checks import whole_number
from sdm.core.errors import InvalidInputError, StoreFormatError
from sdm.traces.trace import Trace
from sdm.placement.profile_table import PoolingStats, TableProfile, profile_table
from sdm.placement.sketch import CountMinSketch

__all__ = ["Profile", "PROFILE_FORMAT", "PROFILE_VERSION"]

PROFILE_FORMAT = "sdm-profile"
PROFILE_VERSION = 1

_ARRAYS = ("cdf_x", "cdf_y", "hh_rows", "hh_counts", "coaccess_rows", "coaccess_partners", "coaccess_counts")


@dataclass
class Profile:
    tables: dict[str, TableProfile]
    batch_size: int = 0
    source: str = ""

    def __getitem__(self, name: str) -> TableProfile:
        try:
            return self.tables[name]
        except KeyError:
            raise InvalidInputError(f"unknown table {name!r}; profile has {list(self.tables)}") from None

    def __iter__(self):
        return iter(self.tables.values())

    def __len__(self) -> int:
        return len(self.tables)

    @property
    def memory_bytes(self) -> int:
        return sum(t.memory_bytes for t in self.tables.values())

    @classmethod
    def from_trace(cls, trace: Trace, *, progress: bool = False, source: str = "", **kwargs) -> "Profile":
        """Profile every table of `trace`; keyword arguments go to `profile_table` (memory budget per
        table, eps/delta, heavy-hitter and co-access sizes)."""
        if not isinstance(trace, Trace):
            raise InvalidInputError(f"Profile.from_trace needs an sdm.traces.Trace, got {type(trace).__name__}")
        bar = None
        if progress:
            from tqdm import tqdm

            import sys

            # off a terminal (a log, CI) a line every 10 s instead of a redrawn bar
            bar = tqdm(total=trace.num_lookups, unit="lookup", unit_scale=True, desc="profile", file=sys.stderr,
                       mininterval=0.1 if sys.stderr.isatty() else 10.0)
        try:
            tables = {}
            for t, name in enumerate(trace.table_names):
                if bar is not None:
                    bar.set_postfix_str(name)
                tables[name] = profile_table(name, trace.num_rows[t], trace.indices[t], trace.offsets[t],
                                             progress=bar, **kwargs)
        finally:
            if bar is not None:
                bar.close()
        return cls(tables, trace.batch_size, source)

    def summary(self) -> list[dict]:
        return [t.summary() for t in self.tables.values()]

    @property
    def table_base(self) -> np.ndarray:
        """Start of each table in the global id space, as `Trace.table_base`."""
        rows = [t.num_rows for t in self.tables.values()]
        return np.concatenate([[0], np.cumsum(rows[:-1], dtype=np.int64)]).astype(np.int64)

    def hot_rows_global(self, k: int) -> np.ndarray:
        """The k most-read rows over all tables as global ids (`table_base[t] + row`), hottest
        first: the static hot set for a cache replaying `Trace.global_stream()`."""
        k = whole_number(k, "hot_rows_global(k)")
        ids, cnt = [], []
        for base, tp in zip(self.table_base, self.tables.values()):
            rows = tp.hot_rows(min(k, tp.num_rows))
            ids.append(rows + base)
            cnt.append(tp.count(rows))
        ids, cnt = np.concatenate(ids), np.concatenate(cnt)
        order = np.lexsort((ids, -cnt))[:k]
        return ids[order]

    def save(self, path: str | os.PathLike) -> Path:
        """One .npz: every table's arrays plus a JSON header (`meta_json`). Written atomically."""
        path = Path(path)
        arrays: dict[str, np.ndarray] = {}
        meta_tables = []
        for i, tp in enumerate(self.tables.values()):
            for a in _ARRAYS:
                arrays[f"t{i}_{a}"] = getattr(tp, a)
            if tp.exact:
                arrays[f"t{i}_counts"] = tp.counts
            else:
                arrays[f"t{i}_cms"] = tp.sketch.table
            meta_tables.append({
                "name": tp.name, "num_rows": tp.num_rows, "num_lookups": tp.num_lookups,
                "num_samples": tp.num_samples, "unique_rows": tp.unique_rows,
                "pooling": vars(tp.pooling), "coaccess_samples": tp.coaccess_samples,
                "unique_relative_error": tp.unique_relative_error,
                "memory_budget_bytes": tp.memory_budget_bytes, "extra": tp.extra,
                "sketch": None if tp.exact else {"width_log2": tp.sketch.width_log2, "depth": tp.sketch.depth,
                                                  "seed": tp.sketch.seed, "total": tp.sketch.total},
            })
        meta = {"format": PROFILE_FORMAT, "version": PROFILE_VERSION, "batch_size": self.batch_size,
                "source": self.source, "tables": meta_tables}
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)
        return write_atomically(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Profile":
        path = require_file(path, "profile")
        if path.is_dir():
            raise StoreFormatError(f"profile {str(path)!r} is a directory, not a file")
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise StoreFormatError(f"{str(path)!r} is not an sdm profile (not an .npz archive)")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "meta_json" not in z.files:
                    raise StoreFormatError(f"{str(path)!r} is not an sdm profile (no meta_json)")
                meta = check_header(json.loads(bytes(z["meta_json"]).decode()), path, kind="profile",
                                    file_format=PROFILE_FORMAT, version=PROFILE_VERSION)
                tables = {}
                for i, m in enumerate(meta["tables"]):
                    arrs = {a: z[f"t{i}_{a}"] for a in _ARRAYS}
                    sk = m["sketch"]
                    sketch = None if sk is None else CountMinSketch(sk["width_log2"], sk["depth"], sk["seed"],
                                                                    table=z[f"t{i}_cms"], total=sk["total"])
                    counts = z[f"t{i}_counts"] if sk is None else None
                    tables[m["name"]] = TableProfile(
                        name=m["name"], num_rows=m["num_rows"], num_lookups=m["num_lookups"],
                        num_samples=m["num_samples"], unique_rows=m["unique_rows"],
                        pooling=PoolingStats(**m["pooling"]), coaccess_samples=m["coaccess_samples"],
                        counts=counts, sketch=sketch, unique_relative_error=m["unique_relative_error"],
                        memory_budget_bytes=m["memory_budget_bytes"], extra=m["extra"], **arrs,
                    )
        except (zipfile.BadZipFile, OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
            raise StoreFormatError(f"cannot read profile {str(path)!r}: {exc}") from exc
        return cls(tables, meta["batch_size"], meta.get("source", ""))
