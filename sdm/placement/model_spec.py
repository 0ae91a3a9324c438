"""MODEL argument of `sdm-plan`: a TOML/JSON file or a DLRM-style list such as `1460-583-10131227:64`.

DLRM list form (as dlrm_s_pytorch.py's `--arch-embedding-size` plus `--arch-sparse-feature-size`):
`ROWS-ROWS-...[:DIM[:FORMAT[:POOLING]]]`, e.g. `1460-583-10131227:64:int8:1`. Tables are named t0, t1, ...

File form (TOML or JSON), either an explicit list or repeated groups (for big synthetic models):
```toml
name = "rmc2"
dim = 64                 # defaults for every table
row_format = "fp32"
pooling_factor = 1.0
[[table]]
name = "user_id"; rows = 10131227; dim = 128
[[group]]                # `count` tables named PREFIX0.. with the same shape
prefix = "ads"; count = 800; rows = 5000000
```
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec


@dataclass(frozen=True)
class ModelSpec:
    name: str
    tables: tuple[TableSpec, ...]

    def __post_init__(self) -> None:
        if not self.tables:
            raise InvalidInputError(f"model {self.name!r} has no tables")
        seen: set[str] = set()
        for t in self.tables:
            if t.name in seen:
                raise InvalidInputError(f"model {self.name!r}: table name {t.name!r} appears twice")
            seen.add(t.name)

    @property
    def size_bytes(self) -> int:
        return sum(t.size_bytes for t in self.tables)

    @property
    def num_rows(self) -> int:
        return sum(t.num_rows for t in self.tables)

    def table(self, name: str) -> TableSpec:
        for t in self.tables:
            if t.name == name:
                return t
        raise InvalidInputError(f"model {self.name!r} has no table {name!r}")

    def as_dict(self) -> dict:
        return {"name": self.name, "table": [
            {"name": t.name, "rows": t.num_rows, "dim": t.dim, "row_format": t.row_format,
             "pooling_factor": t.pooling_factor} for t in self.tables]}


def _count(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(int(n))


# Published table sets by name (sdm.traces.table_sets) and the embedding dim their reference runs use
# (facebookresearch/dlrm run_kaggle / MLPerf DLRM: Kaggle 16, Terabyte 128), when no :DIM is given.
NAMED_DIMS = {"criteo-kaggle": 16, "criteo-terabyte": 128}


def _rows_of(item: str) -> list[int]:
    """One dash-separated item: ROWS, or ROWSxN (N tables of ROWS rows, as gen_trace takes)."""
    rows, x, n = item.lower().partition("x")
    count = int(n) if x else 1                       # "10x" is an error, not one table
    if count < 1:
        raise ValueError(item)
    return [int(rows)] * count


def parse_dlrm_list(text: str, name: str | None = None) -> ModelSpec:
    """`1460-583-10131227:64[:fmt[:pooling]]`, `40000000x26:128` (26 tables of 40M rows), or a named set
    (`criteo-kaggle`, `criteo-terabyte`, optionally `:DIM...`) -> ModelSpec, named by its shape (reports
    tell models apart): e.g. "3 tables, 10.1M rows, dim 64"."""
    from sdm.traces.table_sets import TABLE_SETS

    parts = text.strip().split(":")
    if len(parts) > 4:
        raise InvalidInputError(f"model {text!r}: expected ROWS-ROWS-...[:DIM[:FORMAT[:POOLING]]]")
    named = parts[0].lower() in TABLE_SETS
    try:
        rows = list(TABLE_SETS[parts[0].lower()]) if named else [r for item in parts[0].split("-") for r in _rows_of(item)]
    except ValueError:
        raise InvalidInputError(
            f"model {text[:80]!r}: not a file and not a DLRM list like 1460-583-10131227:64, 40000000x26:128 "
            f"or one of {sorted(TABLE_SETS)} (bad row count in {parts[0][:80]!r})") from None
    if not rows or min(rows) < 1:
        raise InvalidInputError(f"model {text[:80]!r}: row counts must be >= 1")
    if named and name is None:
        name = parts[0].lower() + (f" (dim {parts[1]})" if len(parts) > 1 else f" (dim {NAMED_DIMS[parts[0].lower()]})")
    try:
        dim = int(parts[1]) if len(parts) > 1 else (NAMED_DIMS[parts[0].lower()] if named else 64)
        fmt = parts[2] if len(parts) > 2 else "fp32"
        pooling = float(parts[3]) if len(parts) > 3 else 1.0
    except ValueError as exc:
        raise InvalidInputError(f"model {text!r}: {exc}") from None
    if name is None:
        name = (f"{len(rows)} table{'s' if len(rows) != 1 else ''}, {_count(sum(rows))} rows, dim {dim}"
                + (f" {fmt}" if fmt != "fp32" else ""))
    return ModelSpec(name, tuple(TableSpec(f"t{i}", n, dim, fmt, pooling) for i, n in enumerate(rows)))


def _table_from(d: dict, defaults: dict, name: str, where: str) -> TableSpec:
    unknown = set(d) - {"name", "rows", "num_rows", "dim", "row_format", "pooling_factor", "prefix", "count"}
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {sorted(unknown)}")
    rows = d.get("rows", d.get("num_rows"))
    if rows is None:
        raise InvalidInputError(f"{where}: missing 'rows'")
    try:
        return TableSpec(name, int(rows), int(d.get("dim", defaults.get("dim", 64))),
                         d.get("row_format", defaults.get("row_format", "fp32")),
                         float(d.get("pooling_factor", defaults.get("pooling_factor", 1.0))))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def model_from_dict(data: dict, source: str = "model") -> ModelSpec:
    if not isinstance(data, dict):
        raise InvalidInputError(f"{source}: expected a table/object at top level")
    defaults = {k: data[k] for k in ("dim", "row_format", "pooling_factor") if k in data}
    tables: list[TableSpec] = []
    for i, t in enumerate(data.get("table", data.get("tables", []))):
        tables.append(_table_from(t, defaults, t.get("name", f"t{len(tables)}"), f"{source}: table[{i}]"))
    for i, g in enumerate(data.get("group", [])):
        count = int(g.get("count", 1))
        prefix = g.get("prefix", f"g{i}_")
        for k in range(count):
            tables.append(_table_from(g, defaults, f"{prefix}{k}", f"{source}: group[{i}]"))
    if not tables:
        raise InvalidInputError(f"{source}: no [[table]] or [[group]] entries")
    return ModelSpec(str(data.get("name", Path(source).stem)), tuple(tables))


def load_model(arg: str) -> ModelSpec:
    """MODEL argument: existing .toml/.json file, else a DLRM-style list."""
    path = Path(arg)
    try:
        is_file = path.exists()
    except OSError:                                  # e.g. a list longer than a file name may be
        is_file = False
    if path.suffix.lower() in (".toml", ".json") or is_file:
        if not path.exists():
            raise InvalidInputError(f"model file {arg!r} does not exist")
        text = path.read_text()
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                try:
                    import tomllib
                except ModuleNotFoundError:          # Python 3.10
                    import tomli as tomllib          # type: ignore[no-redef]
                data = tomllib.loads(text)
        except Exception as exc:                     # parse errors of either format
            raise InvalidInputError(f"model file {arg!r}: cannot parse: {exc}") from None
        return model_from_dict(data, str(path))
    return parse_dlrm_list(arg)
