"""Model-version swaps: a new version opened beside the serving one, switched atomically, the old
one's disk space reclaimed after.

    live = LiveModel.create(root, tables, weights=...)        # root/v0000000001/, root/CURRENT
    path = live.next_path(); EmbeddingStore.create(path, tables2, weights=...).close()
    live.swap(path)            # open + warm the new version; switch; old closes when idle, then deleted
    live.lookup("t0", indices, offsets)                       # always the current version

A version is an ordinary EmbeddingStore directory `root/v<number:010d>`; `root/CURRENT` (JSON,
written atomically) names the serving one. `swap` opens (and warms) the new store while the old one
serves, then switches with one reference store and rewrites CURRENT; lookups that began on the old
version finish on it; when none is left the old store is closed and its directory removed. A kill -9
at any point leaves CURRENT naming a whole version (the old one until its rename, the new one after);
opening the root removes every other version directory (a half-built new one, or an old one whose
removal was cut short).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
from pathlib import Path

from sdm.core.atomic_file import write_json
from sdm.core.errors import InvalidInputError
from sdm.runtime.embedding_store import EmbeddingStore

CURRENT_FILE = "CURRENT"
VERSION_DIR = re.compile(r"v(\d{10})\Z")


def version_dir(root, number: int) -> Path:
    return Path(root) / f"v{number:010d}"


def current_version(root) -> int:
    """The number CURRENT names (InvalidInputError when `root` holds no served model)."""
    try:
        with open(Path(root) / CURRENT_FILE) as f:
            return int(json.load(f)["version"])
    except FileNotFoundError:
        raise InvalidInputError(f"{root}: no {CURRENT_FILE} file: not a LiveModel root") from None


def remove_version(root, number: int) -> None:
    """Delete a version directory no longer served (its disk space back)."""
    shutil.rmtree(version_dir(root, number), ignore_errors=True)


class LiveModel:
    """The serving version of a model under `root`, swappable while lookups go on (see module doc)."""

    def __init__(self, root, **open_kw):
        self.root = Path(root)
        self._open_kw = open_kw
        self.version = current_version(self.root)
        self._remove_others(keep=self.version)
        self._store = EmbeddingStore.open(version_dir(self.root, self.version), **open_kw)
        self._cond = threading.Condition()
        self._inflight: dict[int, int] = {}  # id(store) -> lookups running on it
        self._swap_lock = threading.Lock()

    @classmethod
    def create(cls, root, tables, **create_kw) -> "LiveModel":
        """A new root with version 1 made by `EmbeddingStore.create(root/v1, tables, **create_kw)`."""
        root = Path(root)
        if (root / CURRENT_FILE).exists():
            raise InvalidInputError(f"{root}: already holds a served model; use LiveModel(root)")
        EmbeddingStore.create(version_dir(root, 1), tables, **create_kw).close()
        write_json(root / CURRENT_FILE, {"version": 1})
        return cls(root)

    @property
    def store(self) -> EmbeddingStore:
        """The serving store (for a call spanning several lookups, use `using()`)."""
        return self._store

    @contextlib.contextmanager
    def using(self):
        """The serving store, kept open until the block ends even if a swap happens meanwhile."""
        with self._cond:
            st = self._store
            self._inflight[id(st)] = self._inflight.get(id(st), 0) + 1
        try:
            yield st
        finally:
            with self._cond:
                self._inflight[id(st)] -= 1
                self._cond.notify_all()

    def lookup(self, name: str, indices, offsets=None, per_sample_weights=None):
        with self.using() as st:
            return st.lookup(name, indices, offsets, per_sample_weights)

    def next_path(self) -> Path:
        """Where to build the next version (a number above every directory present)."""
        nums = [int(m.group(1)) for p in self.root.iterdir() if (m := VERSION_DIR.match(p.name))]
        return version_dir(self.root, max(nums + [self.version]) + 1)

    def swap(self, path, *, warm: bool = True) -> int:
        """Serve the store at `path` (a `next_path()` directory) from now on; returns its number."""
        path = Path(path)
        m = VERSION_DIR.match(path.name)
        if m is None or path.parent.resolve() != self.root.resolve():
            raise InvalidInputError(f"{path}: a new version must be a directory {self.root}/v<10 digits> "
                                    f"(use LiveModel.next_path())")
        number = int(m.group(1))
        with self._swap_lock:
            if number <= self.version:
                raise InvalidInputError(f"{path}: version {number} is not above the serving {self.version}")
            new = EmbeddingStore.open(path, **self._open_kw)  # the old one serves meanwhile
            try:
                if warm:
                    new.warm()
                write_json(self.root / CURRENT_FILE, {"version": number})  # durable switch point
            except BaseException:
                new.close()
                raise
            with self._cond:
                old, old_version = self._store, self.version
                self._store, self.version = new, number  # lookups starting now use the new version
                self._cond.wait_for(lambda: self._inflight.get(id(old), 0) == 0)
                self._inflight.pop(id(old), None)
            old.close()
            remove_version(self.root, old_version)
        return number

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "LiveModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _remove_others(self, keep: int) -> None:
        """Version directories other than `keep`: left by a swap cut short (old or half-built new)."""
        for p in self.root.iterdir():
            m = VERSION_DIR.match(p.name)
            if m is not None and int(m.group(1)) != keep:
                remove_version(self.root, int(m.group(1)))
        with contextlib.suppress(FileNotFoundError):
            for p in self.root.iterdir():
                if p.name.startswith(CURRENT_FILE) and p.name != CURRENT_FILE:
                    os.unlink(p)  # a temporary CURRENT a kill left behind
