"""Replay two ways of spending one budget on the named candidates, on probe scores measured
before the halving shape existed (docs/probe_ranking.json, scripts/rank_agreement.py): which
init each would choose, and how far that init's full training ends from the best one's.

- ``named``: every candidate probed for ``2·L`` steps, the best probe chosen;
- ``halving``: every candidate probed for ``L`` steps, the best two re-probed for ``3·L``
  steps, the best of those chosen (the same total for 6 candidates: ``6·2L = 6L + 2·3L``).

The probes are the constant-rate ones (``old``) read at 50/100/150 steps of one run; regret is
the chosen init's full-training metric minus the best init's (accuracy points, or test loss).

    python scripts/halving_replay.py docs/probe_ranking.json --screen 50
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path


def choices(record: dict, screen: int) -> tuple[str, str, str]:
    """``(best by full training, named's choice, halving's choice)`` for one task and seed."""
    full, probes = record["full"], record["probes"]
    names = [k for k in probes if k in full]

    def probe(name: str, steps: int) -> float:
        value = probes[name]["old"].get(str(steps))
        return value if value is not None and math.isfinite(value) else math.inf

    best = min(names, key=lambda k: full[k]["metric"])
    named = min(names, key=lambda k: probe(k, 2 * screen))
    top2 = sorted(names, key=lambda k: probe(k, screen))[:2]
    return best, named, min(top2, key=lambda k: probe(k, 3 * screen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ranking", type=Path)
    parser.add_argument("--screen", type=int, default=50, help="the halving's first probe (steps)")
    args = parser.parse_args()
    records = json.loads(args.ranking.read_text())["records"]
    print("| task | seeds | best found: named / halving | halving vs named (seeds better / same / worse) |")
    print("| --- | --- | --- | --- |")
    for task, seeds in records.items():
        found, verdict = Counter(), Counter()
        for record in seeds.values():
            best, named, halving = choices(record, args.screen)
            metric = {k: v["metric"] for k, v in record["full"].items()}
            found["named"] += named == best
            found["halving"] += halving == best
            diff = metric[halving] - metric[named]
            verdict["better" if diff < 0 else "worse" if diff > 0 else "same"] += 1
        print(f"| {task} | {len(seeds)} | {found['named']} / {found['halving']} | "
              f"{verdict['better']} / {verdict['same']} / {verdict['worse']} |")


if __name__ == "__main__":
    main()
