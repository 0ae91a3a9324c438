"""A TorchRec quantized EmbeddingBagCollection's tables go in with their codes as they are, and the
wrapped module pools what TorchRec's module pools (fbgemm's IntNBit TBE over the same codes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sdm
from sdm.core.errors import InvalidInputError
from sdm.core.spec import TableSpec
from sdm.runtime import row_formats
from sdm.runtime.collection import StoreEmbeddingBagCollection
from sdm.runtime.embedding_store import EmbeddingStore
from sdm.runtime.store_weights import StoredRows

try:
    import torchrec
    from torchrec.modules.embedding_configs import PoolingType, QuantConfig
    from torchrec.quant.embedding_modules import EmbeddingBagCollection as QuantEBC
except ImportError:  # optional extra
    torchrec = None

needs_torchrec = pytest.mark.skipif(torchrec is None, reason="torchrec not installed (optional extra sdm[torchrec])")

# table: (rows, dim, weight dtype, pooling, features)
TABLES = {
    "t8": (50, 16, "qint8", "SUM", ["f8"]),
    "t4": (30, 8, "quint4x2", "SUM", ["f4", "f4b"]),       # two features share a table
    "t4m": (40, 12, "quint4x2", "MEAN", ["f4m"]),
    "t8m": (20, 20, "qint8", "MEAN", ["f8m"]),
    "t16": (25, 12, "half", "SUM", ["f16"]),
    "t32": (35, 24, "float", "SUM", ["f32"]),
}


def _quant_model(weighted: bool, tables=TABLES, seed=0):
    torch.manual_seed(seed)
    cfgs = [torchrec.EmbeddingBagConfig(name=n, num_embeddings=r, embedding_dim=d, feature_names=fs,
                                        pooling=PoolingType.SUM if weighted else PoolingType[p])
            for n, (r, d, _, p, fs) in tables.items()]
    ebc = torchrec.EmbeddingBagCollection(tables=cfgs, is_weighted=weighted, device=torch.device("cpu"))
    ebc.qconfig = QuantConfig(
        activation=torch.quantization.PlaceholderObserver.with_args(dtype=torch.float),
        weight=torch.quantization.PlaceholderObserver.with_args(dtype=torch.qint8),
        per_table_weight_dtype={n: getattr(torch, t[2]) for n, t in tables.items()})

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sparse = QuantEBC.from_float(ebc)

        def forward(self, kjt):
            return self.sparse(kjt)

    return M()


def _kjt(weighted: bool, tables=TABLES, batch=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    keys, rows = [], []
    for r, _, _, _, fs in tables.values():
        keys += fs
        rows += [r] * len(fs)
    order = torch.randperm(len(keys), generator=g).tolist()  # input order differs from the module's
    keys, rows = [keys[i] for i in order], [rows[i] for i in order]
    lengths = torch.randint(0, 12, (len(keys) * batch,), generator=g)
    lengths[::7] = 0  # empty bags too
    vals = torch.cat([torch.randint(0, r, (int(lengths[i * batch:(i + 1) * batch].sum()),), generator=g)
                      for i, r in enumerate(rows)])
    w = torch.rand(vals.numel(), generator=g) * 4 - 2 if weighted else None
    return torchrec.KeyedJaggedTensor(keys=keys, values=vals, lengths=lengths, weights=w)


def _feature_tables(tables=TABLES):
    return {f: (n, t) for n, t in tables.items() for f in t[4]}


@needs_torchrec
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("cache", ["direct", "hashed"])
def test_wrap_of_a_quantized_collection_pools_what_torchrec_pools(tmp_path, weighted, cache):
    model = _quant_model(weighted)
    kjt = _kjt(weighted)
    with torch.no_grad():
        ref = model(kjt)
    # direct: every table fits its DRAM cache; hashed: ~1/3 of the rows, so lookups mix hits and SCM reads
    kw = {"dram_cache_bytes": 1 << 22} if cache == "direct" else {"dram_cache_bytes": 2000, "cache_layout": "hashed", "ways": 4}
    store = sdm.wrap(model, tmp_path / "q", hardware=None, progress=False, **kw)
    assert all(store.cache(t).direct == (cache == "direct") for t in store.tables)
    assert isinstance(model.sparse, StoreEmbeddingBagCollection)
    fmt = {"qint8": "int8", "quint4x2": "int4", "half": "fp16", "float": "fp32"}
    for n, t in TABLES.items():
        assert store.spec(f"sparse.embedding_bags.{n}").row_format == fmt[t[2]]
    with torch.no_grad():
        for _ in range(2):  # cold (SCM reads), then cached
            out = model(kjt)
            assert out.keys() == ref.keys() and out.length_per_key() == ref.length_per_key()
            got, want = out.to_dict(), ref.to_dict()
            for f, (n, (_, _, dtype, pooling, _)) in _feature_tables().items():
                a, b = got[f], want[f]
                if dtype == "half" and not weighted:
                    # sdm pools fp16 rows with torch's fp16 kernel: the float32 sum rounded to fp16
                    # once (sdm.runtime.quantized); TorchRec's TBE returns that sum unrounded
                    assert torch.equal(a, b.half().float()), f
                elif pooling == "MEAN" and not weighted:
                    # sdm divides the sum by the bag length; fbgemm multiplies by 1 / length:
                    # the same sum, then one float32 rounding apart
                    assert torch.allclose(a, b, rtol=2 ** -22, atol=0), f
                    assert not torch.equal(a, torch.zeros_like(a)), f
                else:  # the same codes through fbgemm's kernels: bit for bit
                    assert torch.equal(a, b), (f, (a - b).abs().max())
    tiers = store.stats()["total"]["tiers"]
    assert tiers["dram"]["rows"] > 0 and tiers["scm"]["rows"] > 0  # cold reads (and misses, hashed)
    store.close()


@needs_torchrec
def test_codes_are_stored_as_they_are(tmp_path):
    model = _quant_model(False)
    tbes = {cfg.name: (tbe, i) for tbe, cfgs in zip(model.sparse._emb_modules, model.sparse._key_to_tables.values())
            for i, cfg in enumerate(cfgs)}
    store = sdm.wrap(model, tmp_path / "q", hardware=None, progress=False)
    for n, (rows, dim, dtype, _, _) in TABLES.items():
        tbe, i = tbes[n]
        codes, scale, bias = tbe.split_embedding_weights_with_scale_bias(split_scale_bias_mode=2)[i]
        stored = store._table(f"sparse.embedding_bags.{n}").read_all()
        if dtype == "qint8":
            assert np.array_equal(stored[:, :dim], codes.numpy())
            tail = stored[:, dim:].copy().view(np.float32)  # fp32 scale, bias: the fp16 values widened
            assert np.array_equal(tail[:, 0], scale.float().numpy()[:, 0])
            assert np.array_equal(tail[:, 1], bias.float().numpy()[:, 0])
        elif dtype == "quint4x2":
            assert np.array_equal(stored[:, :dim // 2], codes.numpy())
            tail = stored[:, dim // 2:].copy().view(np.uint16)  # fp16 scale, bias: the same bits
            assert np.array_equal(tail[:, 0], scale.view(torch.int16).numpy()[:, 0].view(np.uint16))
            assert np.array_equal(tail[:, 1], bias.view(torch.int16).numpy()[:, 0].view(np.uint16))
        else:
            want = codes.numpy().view(np.float16 if dtype == "half" else np.float32)
            assert stored.dtype == want.dtype and np.array_equal(stored.view(np.uint8), want.view(np.uint8))
    store.close()


@needs_torchrec
def test_unsupported_quantized_tables_are_refused_by_name(tmp_path):
    tables = {"ok": (20, 8, "qint8", "SUM", ["a"]), "two_bit": (20, 8, "quint2x4", "SUM", ["b"])}
    model = _quant_model(False, tables)
    with pytest.raises(InvalidInputError, match="sparse.embedding_bags.two_bit.*int2"):
        sdm.wrap(model, tmp_path / "q", hardware=None, progress=False)
    assert not (tmp_path / "q").exists()


def test_stored_rows_are_written_bit_for_bit(tmp_path):
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    specs = [TableSpec("i8", 300, 16, "int8"), TableSpec("i4", 300, 16, "int4"), TableSpec("h", 300, 16, "fp16")]
    enc = {s.name: row_formats.encode(x, s.row_format) for s in specs}
    a = EmbeddingStore.create(tmp_path / "a", specs, hardware=None, weights={n: x for n in enc}, progress=False)
    b = EmbeddingStore.create(tmp_path / "b", specs, hardware=None,
                              weights={n: StoredRows(torch.from_numpy(e)) for n, e in enc.items()}, progress=False)
    ids, offs = torch.randint(0, 300, (200,)), torch.arange(0, 200, 5)
    for s in specs:
        assert np.array_equal(b._table(s.name).read_all(), enc[s.name])
        assert torch.equal(a.lookup(s.name, ids, offs), b.lookup(s.name, ids, offs))
    a.close()
    b.close()


def test_bad_stored_rows_are_named_and_nothing_is_written(tmp_path):
    spec = TableSpec("t", 10, 8, "int8")
    with pytest.raises(InvalidInputError, match=r"table 't': stored rows must be uint8 \(10, 16\)"):
        EmbeddingStore.create(tmp_path / "s", [spec], hardware=None, weights={"t": StoredRows(np.zeros((10, 8), np.uint8))})
    rows = row_formats.encode(np.ones((10, 8), np.float32), "int8")
    rows[4, 8:12] = np.array([np.nan], np.float32).view(np.uint8)  # a NaN scale
    with pytest.raises(InvalidInputError, match="stored row 4 has a non-finite scale or bias"):
        EmbeddingStore.create(tmp_path / "s", [spec], hardware=None, weights={"t": StoredRows(rows)})
    half = TableSpec("h", 10, 8, "fp16")
    bad = np.ones((10, 8), np.float16)
    bad[2, 3] = np.inf
    with pytest.raises(InvalidInputError, match="stored row 2 has a non-finite value"):
        EmbeddingStore.create(tmp_path / "s", [half], hardware=None, weights={"h": StoredRows(bad)})
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
