"""Copy method records from the run files of one benchmark output into another's.

A benchmark run into a scratch folder (``scripts/benchmark.py --out /tmp/x``, e.g. one method
re-run on copies of docs/runs with its old records removed) is merged back with:

    python scripts/merge_runs.py /tmp/x/runs docs/runs autoinit_budget

For every task file in the source, each seed's records of the named methods (default: the
methods the target lacks for that seed) replace the target's; every environment the source file
records (its ``earlier_runs`` and ``environment``) that the target does not hold yet is appended
to the target's ``earlier_runs`` with the methods merged. A target file into which no record was
merged (none wanted, or each the same as the target's, as in an unchanged copy) is left as it
is. Tasks the target does not hold are skipped. Then
``scripts/benchmark.py --report-only --out docs`` rewrites the report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def merge(source: dict, target: dict, methods: list[str]) -> list[tuple[str, str]]:
    """Copy ``source``'s method records into ``target`` (in place); the ``(seed, method)``
    pairs copied (a record the same as the target's is not copied)."""
    added = []
    for seed, record in source["seeds"].items():
        held = target["seeds"].get(seed, {}).get("methods", {})
        for method, run in record["methods"].items():
            wanted = method in methods if methods else method not in held
            if wanted and held.get(method) != run:
                into = target["seeds"].setdefault(
                    seed, {"methods": {}, **{k: v for k, v in record.items() if k != "methods"}})
                into["methods"][method] = run
                added.append((seed, method))
    if added:
        merged = sorted({m for _, m in added})
        known = [_bare(e) for e in [*target.get("earlier_runs", []), target.get("environment")] if e]
        for env in [*source.get("earlier_runs", []), source.get("environment")]:
            if env and _bare(env) not in known:
                target.setdefault("earlier_runs", []).append({**env, "merged_methods": merged})
                known.append(_bare(env))
    return added


def _bare(environment: dict) -> dict:
    """An environment without what an earlier merge added to it."""
    return {k: v for k, v in environment.items() if k != "merged_methods"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a runs/ folder to copy from")
    parser.add_argument("target", type=Path, help="the runs/ folder to merge into")
    parser.add_argument("methods", nargs="*", help="the methods to copy (default: missing ones)")
    args = parser.parse_args()
    for path in sorted(args.source.glob("*.json")):
        target = args.target / path.name
        if not target.exists():
            print(f"{path.name}: skipped, {args.target} holds no such task")
            continue
        merged = json.loads(target.read_text())
        added = merge(json.loads(path.read_text()), merged, args.methods)
        if added:
            target.write_text(json.dumps(merged))
        print(f"{path.name}: {len(added)} records copied {sorted(set(added))}")


if __name__ == "__main__":
    main()
