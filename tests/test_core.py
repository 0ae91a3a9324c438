"""sdm.core: the one input validator, the one text-table formatter, the one atomic versioned file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from sdm.core.atomic_file import MissingFileError, read_json, write_atomically, write_json
from sdm.core.checks import bag_offsets, ids_in_range, integer_array, whole_number
from sdm.core.errors import CorruptionError, InvalidInputError, StoreFormatError
from sdm.core.text_table import rows_table, text_table


def test_ids_in_range_names_the_first_bad_id_and_position():
    assert ids_in_range(np.array([0, 3, 9]), 10, "t").tolist() == [0, 3, 9]
    for bad, pos in (([0, -1, 12], 1), ([10], 0), ([1, 2, 2**62], 2)):
        with pytest.raises(InvalidInputError, match=rf"index {bad[pos]} at position {pos} is out of range \[0, 10\)"):
            ids_in_range(np.array(bad, np.int64), 10, "t")
    with pytest.raises(InvalidInputError, match="position 1"):
        ids_in_range(np.array([1, -3], np.int32), 10, "t")    # any integer dtype


def test_integer_array_takes_any_integer_layout_and_refuses_floats():
    a = np.arange(10, dtype=np.int64)
    assert integer_array(a, "x") is a                                  # no copy for native int64
    assert integer_array(a[::-2], "x").tolist() == a[::-2].tolist()    # negative stride
    assert integer_array(a.astype(">i8"), "x").dtype == np.dtype("int64")  # big-endian converted
    with pytest.raises(InvalidInputError, match="must be integers"):
        integer_array(np.array([1.5]), "x")
    with pytest.raises(InvalidInputError, match="does not fit int64"):
        integer_array(np.array([2**63], np.uint64), "x")


def test_bag_offsets_rules():
    bag_offsets(np.array([0, 2, 2, 5]), 5, "t", exact_end=True)
    bag_offsets(np.array([0, 2]), 5, "t", exact_end=False)             # nn.EmbeddingBag: last bag to the end
    with pytest.raises(InvalidInputError, match=r"offsets\[0\] must be 0"):
        bag_offsets(np.array([1, 2]), 5, "t", exact_end=False)
    with pytest.raises(InvalidInputError, match=r"offsets\[2\]=1 < offsets\[1\]=3"):
        bag_offsets(np.array([0, 3, 1]), 5, "t", exact_end=False)
    with pytest.raises(InvalidInputError, match="but there are 5 indices"):
        bag_offsets(np.array([0, 4]), 5, "t", exact_end=True)


def test_whole_number_never_truncates():
    assert whole_number(1e6, "n") == 1_000_000
    for bad in (2.7, True, float("nan"), "3", None, -1):
        with pytest.raises(InvalidInputError):
            whole_number(bad, "n")


def test_text_table_aligns_numbers_right_and_checks_shape():
    out = text_table(["name", "n"], [["a", 1], ["bbb", 22.5], ["c", None]]).splitlines()
    assert out[0] == "name     n" and out[1] == "----  ----"
    assert out[2] == "a        1" and out[3] == "bbb   22.5" and out[4] == "c        -"
    assert rows_table([]) == "(none)"
    assert rows_table([{"x": "a", "y": 2}]).splitlines()[0] == "x  y"
    with pytest.raises(ValueError):
        text_table(["a"], [[1, 2]])


def test_atomic_json_round_trip_missing_foreign_and_damaged(tmp_path):
    p = tmp_path / "doc.json"
    with pytest.raises(MissingFileError) as e:
        read_json(p, kind="plan file", file_format="f", version=1)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, InvalidInputError)
    write_json(p, {"format": "f", "version": 1, "x": [1, 2.5]}, checksum=True)
    assert read_json(p, kind="k", file_format="f", version=1)["x"] == [1, 2.5]
    with pytest.raises(StoreFormatError, match="version 1; this sdm reads version 2"):
        read_json(p, kind="k", file_format="f", version=2)
    with pytest.raises(StoreFormatError, match="not an sdm k"):
        read_json(p, kind="k", file_format="g", version=1)
    doc = json.loads(p.read_text())
    doc["x"][0] = 7
    p.write_text(json.dumps(doc))
    with pytest.raises(CorruptionError, match="checksum"):
        read_json(p, kind="k", file_format="f", version=1)
    p.write_bytes(b"\xff\xfe not json")
    with pytest.raises(StoreFormatError, match="not JSON"):
        read_json(p, kind="k", file_format="f", version=1)
    p.write_text(json.dumps({"format": "f", "version": 1}))           # no checksum: read as before
    assert read_json(p, kind="k", file_format="f", version=1)["version"] == 1


def test_write_atomically_keeps_the_old_file_when_the_writer_fails(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")

    def boom(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk went away")

    with pytest.raises(RuntimeError):
        write_atomically(p, boom)
    assert p.read_bytes() == b"old" and not (tmp_path / "f.bin.tmp").exists()
    with pytest.raises(InvalidInputError, match="does not exist"):
        write_atomically(tmp_path / "nope" / "f.bin", lambda tmp: tmp.write_bytes(b"x"))
