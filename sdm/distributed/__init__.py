"""sdm across hosts: each rank serves its shards (whole tables or column slices) from its own
EmbeddingStore as the compute kernel of TorchRec's sharded EmbeddingBagCollection over
torch.distributed (gloo on CPU). See docs/distributed.md.

    from sdm.distributed.serve import serve_trace            # a job inside torchrun
    from sdm.distributed.sharder import shard_collection       # TorchRec sharder with sdm lookups
    from sdm.placement.host_plan import plan_hosts, HostPlan   # the multi-host plan

Modules: kernel (the lookup TorchRec calls; the one store adapter), sharder (TorchRec plan and
sharded module), rank_store (each rank's store from its plan section), process_group (gloo on
loopback, bounded timeouts, PeerLostError), job_report (merged stats, all-to-all bytes), serve
(the job loop). Importing this package imports neither torch.distributed nor torchrec.
"""
