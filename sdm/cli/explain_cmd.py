"""`sdm-plan explain plan.json TABLE`: why the rows of one table went where."""
from __future__ import annotations

import json


def register(subparsers) -> None:
    p = subparsers.add_parser("explain", help="why rows of a table went where (densities, thresholds, capacities)",
                              description="Explain one table's placement in a plan file.")
    p.add_argument("plan", help="plan.json written by `sdm-plan plan`")
    p.add_argument("table", help="table name")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    from sdm.placement.plan import Plan
    from sdm.placement.report import explain, format_explain

    e = explain(Plan.load(args.plan), args.table)
    print(json.dumps(e, indent=1, default=float) if args.json else format_explain(e))
    return 0
