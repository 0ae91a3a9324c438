"""The six-card accelerator path: card and platform specs, partitioner, executor, PCIe and timeline
models, and the report. Names are imported lazily: the executor pulls in torch, the rest is numpy.

    from sdm.accel import Platform, partition, AccelExecutor, model_timeline, plan_summary
"""
from __future__ import annotations

from sdm.core.lazy_exports import lazy_exports

# public name -> module that defines it (docs/accel.md "Modules")
_EXPORTS = {
    "CardSpec": "sdm.hardware.card",
    "PcieLink": "sdm.hardware.pcie",
    "Platform": "sdm.hardware.platform",
    "HOST": "sdm.accel.partitioner",
    "Shard": "sdm.accel.partitioner",
    "Partition": "sdm.accel.partitioner",
    "partition": "sdm.accel.partitioner",
    "partition_from_plan": "sdm.accel.partitioner",
    "Router": "sdm.accel.routing",
    "trace_shard_counts": "sdm.accel.routing",
    "AccelExecutor": "sdm.accel.executor",
    "replay": "sdm.accel.executor",
    "build_host_store": "sdm.accel.executor",
    "Timeline": "sdm.accel.timeline",
    "model_timeline": "sdm.accel.timeline",
    "build_report": "sdm.accel.report",
    "format_report": "sdm.accel.report",
    "what_if_moves": "sdm.accel.what_if",
    "partition_summary": "sdm.accel.plan_view",
    "plan_summary": "sdm.accel.plan_view",
    "format_plan_summary": "sdm.accel.plan_view",
    "plot_utilisation": "sdm.accel.report",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
