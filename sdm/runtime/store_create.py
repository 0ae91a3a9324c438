"""What `EmbeddingStore.create` does before the store is opened: check every argument, choose the
placement, then write the store's directory.

    resolve_hardware("host-nand")  -> (HardwareSpec, "host-nand")
    write_new_store(path, specs, hw, hw_name, ...)   # every check first: bad input changes nothing

Kept apart from the public class (sdm/runtime/embedding_store.py) so that the argument rules and
the directory's life cycle (empty, existing, overwrite) live in one place.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import warnings
from pathlib import Path
from typing import Iterable, Mapping

from sdm.core.atomic_file import fsync_dir
from sdm.core.checks import whole_number
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime.create_placement import create_placement
from sdm.runtime.store_config import ADMISSION_MODES, CACHE_LAYOUTS, PAGE_ADMIT_MODES, PAGE_LAYOUTS, check_choice
from sdm.runtime.store_files import StoreRecord, write_store
from sdm.runtime.store_weights import check_weights

__all__ = ["resolve_hardware", "check_specs", "page_layout_choice", "write_new_store", "swap_in"]

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2   # <fcntl.h>, <linux/fs.h>


def resolve_hardware(hardware):
    """(HardwareSpec or None, name). A name needs sdm.hardware.server; without it, no device models."""
    if hardware is None:
        return None, None
    if isinstance(hardware, str):
        from sdm.hardware.server import hardware as preset

        return preset(hardware), hardware
    return hardware, getattr(hardware, "name", "custom")


def check_specs(tables: Iterable[TableSpec]) -> list[TableSpec]:
    specs = list(tables)
    if not specs:
        raise InvalidInputError("create needs at least one table")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InvalidInputError(f"duplicate table names: {dup}")
    return specs


def page_layout_choice(page_layout: str, layout: str | None) -> str:
    """The SCM page layout from `page_layout`, or from the deprecated `layout` keyword."""
    if layout is not None:
        warnings.warn("EmbeddingStore.create(layout=...) is deprecated and goes in the next version; use "
                      "page_layout=... (the SCM page order; cache_layout is the DRAM cache's)",
                      DeprecationWarning, stacklevel=4)
        if page_layout not in ("auto", layout):
            raise InvalidInputError(f"layout={layout!r} and page_layout={page_layout!r} disagree; pass page_layout only")
        page_layout = layout
    return check_choice("page_layout", page_layout, PAGE_LAYOUTS)


def write_new_store(path, tables, hardware, weights, plan, dram_cache_bytes, *, profile, policy: str,
                    options: Mapping | None, ways, queue_depth, page_bytes, cache_layout: str, overwrite: bool,
                    page_layout: str, admission: str, page_admit: str, layout: str | None,
                    progress: bool | None):
    """Check every argument of `create`, then write the store under `path`; returns (path, hw)."""
    page_layout = page_layout_choice(page_layout, layout)
    if progress not in (None, True, False):
        raise InvalidInputError(f"progress must be True, False or None, got {progress!r}")
    specs = check_specs(tables)
    ways = whole_number(ways, "ways", minimum=1)
    queue_depth = whole_number(queue_depth, "queue_depth", minimum=1)
    page_bytes = whole_number(page_bytes, "page_bytes", minimum=1)
    if dram_cache_bytes is not None:
        dram_cache_bytes = whole_number(dram_cache_bytes, "dram_cache_bytes")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{path} is a file, not a directory for a store")
    existing = path.exists() and any(path.iterdir())
    if existing and not overwrite:
        raise InvalidInputError(f"{path} is not empty; pass overwrite=True to replace it")
    check_choice("cache_layout", cache_layout, CACHE_LAYOUTS)
    check_choice("admission", admission, ADMISSION_MODES)
    check_choice("page_admit", page_admit, PAGE_ADMIT_MODES)
    if page_layout == "hot" and profile is None:
        raise InvalidInputError("page_layout='hot' needs a profile (create(..., profile=...))")
    hw, hw_name = resolve_hardware(hardware)
    options = dict(options or {})
    for n in options:
        if n not in {s.name for s in specs}:
            raise InvalidInputError(f"options given for unknown table {n!r}")
    place = create_placement(specs, hw, plan, dram_cache_bytes, policy, profile, page_layout)
    check_weights(weights, specs)
    record = StoreRecord(hardware=hw_name, queue_depth=queue_depth, page_bytes=page_bytes, ways=ways,
                         admission=admission, page_admit=page_admit, specs=specs, options=options,
                         placement=place)
    scm_dev = getattr(hw, "scm", None) if hw is not None else None
    if not existing:
        path.mkdir(parents=True, exist_ok=True)
        write_store(path, record, weights, scm_dev or "nand", progress)
        return path, hw
    # overwrite: the new store is built whole beside the old one and swapped in only after its
    # store.json is committed; until then the old store is untouched and openable
    new, old = _sibling(path, "new"), _sibling(path, "old")
    for stale in (new, old):   # left by a crash of an earlier overwrite (see swap_in)
        shutil.rmtree(stale, ignore_errors=True)
    new.mkdir()
    try:
        write_store(new, record, weights, scm_dev or "nand", progress)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    swap_in(new, path, old)
    return path, hw


def _sibling(path: Path, what: str) -> Path:
    return path.with_name(f".{path.name}.sdm-{what}")


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the directories `a` and `b` (Linux renameat2 RENAME_EXCHANGE); False where the
    kernel, filesystem or libc cannot, and nothing was changed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def swap_in(new: Path, path: Path, old: Path) -> None:
    """Put the committed store `new` at `path` and delete the store that was there.

    Where renameat2(RENAME_EXCHANGE) works (Linux >= 3.15, ext4/xfs/btrfs/tmpfs) the swap is one
    atomic step: a crash leaves `path` holding either the old store or the new one, whole, plus
    the other under the sibling name `.NAME.sdm-new`, deleted by the next overwrite. Elsewhere
    it is two renames (path -> .NAME.sdm-old, new -> path): a crash between them leaves no store at
    `path`, the old one whole at `.NAME.sdm-old` and the new one whole at `.NAME.sdm-new`
    (rename either back by hand); that window is two rename calls long."""
    if _exchange(new, path):
        fsync_dir(path.parent)
        shutil.rmtree(new, ignore_errors=True)   # now the old store
        return
    os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)   # put the old store back
        raise
    fsync_dir(path.parent)
    shutil.rmtree(old, ignore_errors=True)
