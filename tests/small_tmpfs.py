"""A small tmpfs mounted for a test (disk-full cases): root only, skipped with the reason otherwise."""
from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's syntax, e.g. "2m") at tmp_path/fs, unmounted on leaving; the
    store's warning that its data lives in RAM is silenced inside."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # tmpfs: the store warns its data lives in RAM
            yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
