"""The one plain-text table every command prints: aligned columns, a rule under the header, numbers
right-aligned. Cells are formatted by the caller (units belong in the header or the cell)."""
from __future__ import annotations

import numbers
from typing import Any, Mapping, Sequence

__all__ = ["text_table", "rows_table"]


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None,
               rule: bool = True, empty: str = "(none)") -> str:
    """`rows` under `header`. `align` gives one letter a column ('l' or 'r'); by default a column whose
    cells are all numbers (or '-' / None for not applicable) is right-aligned, any other left-aligned.
    None prints as '-'; floats print as given by `format(v, 'g')` unless the caller formatted them."""
    if not rows:
        return empty
    n = len(header)
    for i, r in enumerate(rows):
        if len(r) != n:
            raise ValueError(f"row {i} has {len(r)} cells, the header {n}")
    if align is None:
        align = "".join(
            "r" if all(_is_number(r[c]) or r[c] in ("-", None) for r in rows) and any(_is_number(r[c]) for r in rows)
            else "l" for c in range(n))
    elif len(align) != n or set(align) - {"l", "r"}:
        raise ValueError(f"align must be {n} letters of 'l'/'r', got {align!r}")
    cells = [[_cell(v) for v in r] for r in rows]
    width = [max(len(str(header[c])), *(len(r[c]) for r in cells)) for c in range(n)]

    def line(vals):
        return "  ".join(v.rjust(w) if a == "r" else v.ljust(w) for v, w, a in zip(vals, width, align)).rstrip()

    out = [line([str(h) for h in header])]
    if rule:
        out.append("  ".join("-" * w for w in width))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def rows_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, **kw) -> str:
    """`text_table` of dicts: the columns are `columns` or the first row's keys."""
    if not rows:
        return kw.get("empty", "(none)")
    cols = list(columns or rows[0].keys())
    return text_table(cols, [[r.get(c) for c in cols] for r in rows], **kw)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
