"""A TorchRec sharder whose compute kernel is this rank's EmbeddingStore.

    ebc = EmbeddingBagCollection(tables=configs, device=torch.device("meta"))  # no weights in memory
    sharded = shard_collection(ebc, host_plan, store, env)
    kt = sharded(kjt).wait()        # KeyedJaggedTensor in, KeyedTensor out, like the unsharded module

TorchRec does the sharding: its ShardedEmbeddingBagCollection splits the features by sharding
type, runs its input all-to-all (KJTAllToAll), calls one lookup module per sharding type, and runs
its output all-to-all; only the lookup is ours (`StoreShardLookup`). The plan given to TorchRec is
made from the host plan (rank r = host r): a whole table is TABLE_WISE on its host, a table cut into
column slices is COLUMN_WISE with one shard per slice; the kernel is TorchRec's CUSTOMIZED_KERNEL,
for which it keeps no weights. Row-wise sharding is not offered: on CPU it needs reduce-scatter,
which gloo lacks.
"""
from __future__ import annotations

from collections import defaultdict

import torch
from torch.distributed._shard.sharding_spec import EnumerableShardingSpec, ShardMetadata
from torchrec.distributed.embedding_types import EmbeddingComputeKernel
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder, ShardedEmbeddingBagCollection
from torchrec.distributed.types import ParameterSharding, ShardingEnv, ShardingType
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType

from sdm.core.errors import InvalidInputError
from sdm.distributed.kernel import A2ACounter, StoreShardLookup

__all__ = ["SdmShardedEmbeddingBagCollection", "SdmEmbeddingBagCollectionSharder", "parameter_shardings",
           "shard_collection", "bag_configs", "KERNEL"]

KERNEL = EmbeddingComputeKernel.CUSTOMIZED_KERNEL.value


class SdmShardedEmbeddingBagCollection(ShardedEmbeddingBagCollection):
    """TorchRec's sharded EmbeddingBagCollection with each sharding's lookup read from `store`."""

    def __init__(self, *args, store, counter: A2ACounter | None = None, **kw):
        # set before TorchRec's __init__, which builds the lookups
        object.__setattr__(self, "_sdm_store", store)
        object.__setattr__(self, "_sdm_counter", counter)
        super().__init__(*args, **kw)

    def _create_lookups(self) -> None:
        for sharding in self._embedding_shardings:
            self._lookups.append(StoreShardLookup(sharding, self._sdm_store, self._sdm_counter))

    def reset_parameters(self) -> None:
        pass          # the rows were written to the store when it was built; nothing to initialise


class SdmEmbeddingBagCollectionSharder(EmbeddingBagCollectionSharder):
    def __init__(self, store, counter: A2ACounter | None = None):
        super().__init__()
        self.store, self.counter = store, counter

    def compute_kernels(self, sharding_type: str, compute_device_type: str) -> list[str]:
        return [KERNEL]

    def sharding_types(self, compute_device_type: str) -> list[str]:
        return [ShardingType.TABLE_WISE.value, ShardingType.COLUMN_WISE.value]

    def shard(self, module, params, env, device=None, module_fqn=None):
        return SdmShardedEmbeddingBagCollection(
            module=module, table_name_to_parameter_sharding=params, env=env, fused_params=self.fused_params,
            device=device, module_fqn=module_fqn, store=self.store, counter=self.counter)


def parameter_shardings(host_plan, world_size: int) -> dict[str, ParameterSharding]:
    """TorchRec's plan for one EmbeddingBagCollection, from the host plan (rank r serves host r)."""
    if host_plan.num_hosts != world_size:
        raise InvalidInputError(f"the host plan has {host_plan.num_hosts} hosts but the job has {world_size} ranks; "
                                f"plan with hosts={world_size}")
    by_table = defaultdict(list)
    for s in host_plan.shards():
        by_table[s.table].append(s)
    out = {}
    for name, shards in by_table.items():
        shards.sort(key=lambda s: s.col_start)
        kind = ShardingType.TABLE_WISE if len(shards) == 1 else ShardingType.COLUMN_WISE
        spec = EnumerableShardingSpec([ShardMetadata(shard_offsets=[0, s.col_start], shard_sizes=[s.num_rows, s.dim],
                                                     placement=f"rank:{s.host}/cpu") for s in shards])
        out[name] = ParameterSharding(sharding_type=kind.value, compute_kernel=KERNEL,
                                      ranks=[s.host for s in shards], sharding_spec=spec)
    return out


def bag_configs(host_plan, pooling: str = "sum") -> list[EmbeddingBagConfig]:
    """One EmbeddingBagConfig per table of the host plan, feature name = table name."""
    kind = {"sum": PoolingType.SUM, "mean": PoolingType.MEAN}.get(pooling)
    if kind is None:
        raise InvalidInputError(f"pooling must be 'sum' or 'mean' for a sharded collection, not {pooling!r}")
    return [EmbeddingBagConfig(name=n, embedding_dim=int(t["dim"]), num_embeddings=int(t["num_rows"]),
                               feature_names=[n], pooling=kind) for n, t in host_plan.tables.items()]


def shard_collection(ebc, host_plan, store, env: ShardingEnv | None = None,
                     counter: A2ACounter | None = None) -> SdmShardedEmbeddingBagCollection:
    """`ebc` (best built on the meta device: its weights are never used) sharded over the job's
    ranks by `host_plan`, this rank's shards served from `store`."""
    import torch.distributed as dist

    env = env or ShardingEnv.from_process_group(dist.group.WORLD)
    params = parameter_shardings(host_plan, env.world_size)
    unknown = set(params) - {c.name for c in ebc.embedding_bag_configs()}
    if unknown:
        raise InvalidInputError(f"the host plan shards tables {sorted(unknown)[:5]} the module does not have")
    sharder = SdmEmbeddingBagCollectionSharder(store, counter)
    return sharder.shard(ebc, params, env, torch.device("cpu"))
