"""Issue 12: --model takes ROWSxN:DIM, the Criteo names, files and lists of any length; a plan says
whether it is self-contained or names its companion folder; `run` takes the README's own model."""
from __future__ import annotations

import json

import pytest

from sdm.core.errors import InvalidInputError
from sdm.placement.model_spec import load_model
from sdm.traces.table_sets import CRITEO_KAGGLE_ROWS, CRITEO_TERABYTE_ROWS


def test_rows_times_n():
    m = load_model("40000000x26:128")
    assert [t.num_rows for t in m.tables] == [40_000_000] * 26 and {t.dim for t in m.tables} == {128}
    m = load_model("1000x3-500:8:fp16")
    assert [t.num_rows for t in m.tables] == [1000, 1000, 1000, 500] and m.tables[0].row_format == "fp16"


def test_criteo_names():
    k, t = load_model("criteo-kaggle"), load_model("criteo-terabyte:64")
    assert [x.num_rows for x in k.tables] == list(CRITEO_KAGGLE_ROWS) and k.tables[0].dim == 16
    assert [x.num_rows for x in t.tables] == list(CRITEO_TERABYTE_ROWS) and t.tables[0].dim == 64
    assert load_model("criteo-terabyte").tables[0].dim == 128


def test_lists_of_any_length():
    m = load_model("-".join(["1000"] * 500) + ":16")                # 2,500 characters: not a file name
    assert len(m.tables) == 500


@pytest.mark.parametrize("bad", ["10x0:4", "abc:4", "0-5:4", "10x:4"])
def test_bad_lists(bad):
    with pytest.raises(InvalidInputError, match="model"):
        load_model(bad)


def test_model_file_example_from_the_walkthrough_parses(tmp_path):
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("docs", "planner_walkthrough.md").read_text()
    toml = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "model.toml").write_text(toml)
    m = load_model(str(tmp_path / "model.toml"))
    assert m.name == "rmc2-like" and len(m.tables) == 1 + 8
    assert m.table("user_id").dim == 128 and m.table("ads0").num_rows == 5_000_000


@pytest.mark.parametrize("rows,companion", [((200_000, 5000), True), ((100, 50), False)])
def test_plan_names_its_companion_folder(tmp_path, capsys, rows, companion):
    from sdm.cli import main
    from sdm.traces.generators import zipf_trace

    zipf_trace(list(rows), 3000, pooling=8, seed=0).save(tmp_path / "t.npz")
    model = "-".join(map(str, rows)) + ":16"
    args = ["plan", "--model", model, "--trace", str(tmp_path / "t.npz"), "--hardware", "host-nand",
            "--set", "plan.dram_usable_fraction=0.00001", "--out", str(tmp_path / "p.json"), "--no-progress"]
    assert main(args + ["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    on_disk = json.loads((tmp_path / "p.json").read_text())
    if companion:        # scattered hot rows: id arrays beside the plan, and the plan says so
        assert on_disk["companion_folder"] == "p.rows" and any((tmp_path / "p.rows").iterdir())
        assert doc["companion_folder"] == str(tmp_path / "p.rows")
    else:                # every row in DRAM as one range: nothing beside the plan
        assert on_disk["companion_folder"] is None and doc["companion_folder"] is None
    assert main(args) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert (f"companion folder {tmp_path / 'p.rows'}/" in last) == companion
    assert ("(self-contained)" in last) != companion


def test_run_limit_follows_this_machines_memory():
    import os

    from sdm.cli.run_cmd import max_weight_bytes

    phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert max_weight_bytes() == int(0.4 * phys)
    assert load_model("1460-583-10131227:64").size_bytes < max_weight_bytes() or phys < 7e9
