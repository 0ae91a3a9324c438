"""Placement: hotness profiles, placement policies, page layout, the plan file, power, cost and fleets.

The planner is a pipeline of small stages (enumerate, page layout, propose, partition, estimate,
objective, report), each an interface in `sdm.placement.types` and each replaceable:
`Planner.from_options(opts, proposer=...)`; `plan_model` runs the default stages. Names are imported lazily so that
`import sdm.placement` stays cheap (numba kernels and matplotlib load only when used).

    from sdm.placement import Profile, plan_model, PlanOptions, Plan
    plan = plan_model(tables, [h.good_turing() for h in hotness], sdm.hardware("host-nand")).plan
"""
from __future__ import annotations

from sdm.core.lazy_exports import lazy_exports

# public name -> module that defines it (docs/interfaces.md "Profiles" and "Placement")
_EXPORTS = {
    # profiles
    "Profile": "sdm.placement.profile",
    "TableProfile": "sdm.placement.profile_table",
    # the plan file
    "Plan": "sdm.placement.plan",
    "TablePlan": "sdm.placement.plan",
    "TierPlacement": "sdm.placement.plan",
    "RowSet": "sdm.placement.plan",
    "PLAN_VERSION": "sdm.placement.plan",
    # pipeline stages and their types
    "Planner": "sdm.placement.planner",
    "plan_model": "sdm.placement.planner",
    "PlanOptions": "sdm.placement.options",
    "PlanResult": "sdm.placement.planner",
    "HardwareEnumerator": "sdm.placement.enumerator",
    "CardPartitioner": "sdm.placement.card_partition",
    "Placement": "sdm.placement.assignment",
    "TableAssignment": "sdm.placement.assignment",
    "TableHotness": "sdm.placement.types",
    "TierSpec": "sdm.placement.types",
    "Candidate": "sdm.placement.types",
    "Estimate": "sdm.placement.types",
    "TIER_ORDER": "sdm.placement.types",
    "RowLevel": "sdm.placement.proposers",
    "TableLevel": "sdm.placement.proposers",
    "WholeTablesBaseline": "sdm.placement.proposers",
    "PROPOSERS": "sdm.placement.proposers",
    "proposer": "sdm.placement.proposers",
    "objective": "sdm.placement.objectives",
    "Workload": "sdm.placement.objectives",
    "DefaultEstimator": "sdm.placement.objectives",
    "MinLatency": "sdm.placement.objectives",
    "MinWithinBudget": "sdm.placement.objectives",
    # models, page layout, power, cost, fleet
    "ModelSpec": "sdm.placement.model_spec",
    "load_model": "sdm.placement.model_spec",
    "co_access_layout": "sdm.placement.page_layout",
    "CoAccessLayout": "sdm.placement.layout_stage",
    "IdOrderLayout": "sdm.placement.layout_stage",
    "load_hotness": "sdm.placement.hotness",
    "LayoutResult": "sdm.placement.page_layout",
    "PowerDefaults": "sdm.placement.power",
    "server_power": "sdm.placement.power",
    "CostDefaults": "sdm.placement.cost",
    "server_capex": "sdm.placement.cost",
    "ServerProfile": "sdm.placement.fleet",
    "size_fleet": "sdm.placement.fleet",
    "savings": "sdm.placement.fleet",
    "compare_hardware": "sdm.placement.compare",
    "Comparison": "sdm.placement.compare",
    # a plan held against a replay of a trace (sdm.cachesim)
    "replay_plan": "sdm.placement.replay",
    "ReplayShares": "sdm.placement.replay",
    # what `sdm-plan plan/compare/explain` print
    "explain": "sdm.placement.report",
    "format_plan": "sdm.placement.report",
    "TextReporter": "sdm.placement.report",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
