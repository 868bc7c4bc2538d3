"""`n_init`: the network of the lowest held-out loss among several seeds, against one seed, on the same networks.

    python benchmarks/detection/seed_selection.py [--datasets msl,keogh,nab,ucr] [--seeds 0,1,2,3,4]
                                                  [--runs 2,3] [--cache DIR]
                                                  [--out benchmarks/results/seed_selection]

`LSTMAutoencoder(n_init=K)` trains K networks (seeds random_state .. random_state + K - 1) and keeps the one
whose mean L1 reconstruction loss on the whole held-out part is the lowest. Here each series is trained at
every seed of --seeds as `detection_study.py` trains lstmae at its defaults (the networks and per-feature
error cache of `error_scales.py`, shared with it: a rerun only scores). A network's held-out loss is the mean
of its cached held-out errors (per window and feature, the mean absolute error over the window's steps: the
same windows and the same number as n_init compares), so for every set of K seeds (each combination of K of
--seeds, K in --runs) the network n_init would keep is known without training, and is scored at lstmae's
defaults exactly as `error_scales.score` scores one network (equal to the study's lstmae to the third decimal).
Each set is compared with the mean of its members, which is what one seed gives on average. Per family and K:
mean VUS-PR, event F1 and recall, the median alarm rate / labelled fraction, the families meeting the issue's
alarm goals and the storms, kept / members' mean, over the sets. Writes seed_selection.json and .md to --out.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for detection_study
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for error_scales

from command_line import command_line  # noqa: E402
import detection_study as study  # noqa: E402
import error_scales  # noqa: E402
import threshold_rules  # noqa: E402

MEASURES = ("vus_pr", "event_f1", "event_recall", "alarm_ratio")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="2,3", help="the numbers of seeds a set holds (n_init), comma-separated")
    error_scales.add_run_arguments(parser, "msl,keogh,nab,ucr", "0,1,2,3,4", "seed_selection")
    args = parser.parse_args(argv)
    families, seeds = args.datasets.split(","), [int(seed) for seed in args.seeds.split(",")]
    runs = [int(k) for k in args.runs.split(",")]
    if not all(2 <= k <= len(seeds) for k in runs):
        parser.error(f"--runs must lie in 2..{len(seeds)} (the number of --seeds)")
    started = time.perf_counter()
    jobs, trained = error_scales.cached_networks(families, seeds, args.data_dir, args.cache)
    results, losses = {}, {}
    for task, seed, path in jobs:
        cached = dict(np.load(path))
        key = (task.family, task.name, seed)
        losses[key] = float(cached["held"].mean())
        results[key] = error_scales.score(cached, scorer=error_scales.task_scorer(cached, task))
    names = {family: sorted({name for fam, name, _ in results if fam == family}) for family in families}
    single = {seed: {family: family_summary(results, family, family_names, {name: seed for name in family_names})
                     for family, family_names in names.items()} for seed in seeds}
    sets = {k: [list(chosen) for chosen in itertools.combinations(seeds, k)] for k in runs}
    compared = {k: [compare(results, losses, names, single, members) for members in sets[k]] for k in runs}
    report = {"command": command_line(__file__, argv),
              "seconds": round(time.perf_counter() - started, 1), "networks_trained": trained,
              "networks_from_cache": len(jobs) - trained, "seeds": seeds, "single_seeds": single,
              "sets": {k: [{"seeds": members, **result} for members, result in zip(sets[k], compared[k])]
                       for k in runs}}
    error_scales.write_results(args.out, "seed_selection", report, markdown(report, families))
    return 0


def family_summary(results: dict, family: str, names: list, picks: dict) -> dict:
    """`threshold_rules.summary` of the family's series, each scored with the network of the seed `picks[name]`."""
    return threshold_rules.summary({name: results[(family, name, picks[name])] for name in names})


def compare(results: dict, losses: dict, names: dict, single: dict, members: list) -> dict:
    """Per family: the summary of the networks n_init keeps among the seeds `members` ("kept", and which seed
    it kept per series) and the members' own summaries ("members", from `single`: {seed: {family: summary}})."""
    out = {}
    for family, family_names in names.items():
        picks = {name: min(members, key=lambda seed: losses[(family, name, seed)]) for name in family_names}
        out[family] = {"kept": family_summary(results, family, family_names, picks), "picks": picks,
                       "members": [single[seed][family] for seed in members]}
    return out


def kept_and_members(entry: dict, family: str, measure: str) -> tuple[float, float]:
    """A set's `measure` in `family` with the networks n_init keeps, and its members' mean (one seed, on average)."""
    return (float(entry[family]["kept"][measure]),
            float(np.mean([float(member[measure]) for member in entry[family]["members"]])))


def over_families(entry: dict, families: list, measure: str) -> tuple[float, float]:
    """`kept_and_members` averaged over `families` (summed for "goals_met": families meeting the goals)."""
    pairs = np.array([kept_and_members(entry, family, measure) for family in families])
    return tuple(pairs.sum(axis=0) if measure == "goals_met" else pairs.mean(axis=0))


def markdown(report: dict, families: list) -> str:
    lines = ["## n_init: the network of the lowest held-out loss among K seeds, against one seed", "",
             f"`{report['command']}`", "",
             "Each cell: the mean over the sets of K seeds (every combination of K of seeds "
             f"{', '.join(map(str, report['seeds']))}) of the family's mean with the networks n_init keeps / of its "
             "members' mean (one seed, on average); in brackets, the smallest and largest difference over the sets. "
             "Alarm rate: the median over the series of the alarm rate / labelled fraction. Goals met and storms: "
             "summed over the sets.", "",
             "| family | K (sets) | VUS-PR | event F1 | event recall | alarm rate (x labelled) | goals met | storms |",
             "|---|---|---|---|---|---|---|---|"]
    for family in families:
        for k, sets in report["sets"].items():
            cells = []
            for measure in (*MEASURES, "goals_met", "storms"):
                kept, members = np.array([kept_and_members(entry, family, measure) for entry in sets]).T
                difference = kept - members
                cells.append(f"{kept.mean():.3f} / {members.mean():.3f} ({difference.min():+.3f} .. "
                             f"{difference.max():+.3f})" if measure in MEASURES[:3] else
                             f"{kept.mean():.2f} / {members.mean():.2f}" if measure == "alarm_ratio" else
                             f"{kept.sum():.0f} / {members.sum():.1f}")
            lines.append(f"| {study.FAMILY_TITLES[family]} | {k} ({len(sets)}) | " + " | ".join(cells) + " |")
    lines += ["", "Over the families: the families' mean VUS-PR and event F1 and the families meeting the alarm "
              "goals, kept / members' mean; per K, the mean over the sets (smallest and largest difference) and "
              "the goals summed, then each set:", "", "| K | seeds | VUS-PR | event F1 | goals met |",
              "|---|---|---|---|---|"]
    for k, sets in report["sets"].items():
        rows = [("all", sets)] * (len(sets) > 1) + [(", ".join(map(str, entry["seeds"])), [entry]) for entry in sets]
        for label, chosen in rows:
            cells = []
            for measure in ("vus_pr", "event_f1", "goals_met"):
                kept, members = np.array([over_families(entry, families, measure) for entry in chosen]).T
                difference = kept - members
                cells.append(f"{kept.sum():.0f} / {members.sum():.2f}" if measure == "goals_met" else
                             f"{kept.mean():.3f} / {members.mean():.3f} ({difference.mean():+.3f})" if len(chosen) == 1
                             else f"{kept.mean():.3f} / {members.mean():.3f} ({difference.mean():+.3f}; "
                                  f"{difference.min():+.3f} .. {difference.max():+.3f})")
            lines.append(f"| {k} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "One seed, per family: VUS-PR / event F1 / goals met:", "",
              "| family | " + " | ".join(f"seed {seed}" for seed in report["seeds"]) + " |",
              "|---|" + "---|" * len(report["seeds"])]
    for family in families:
        lines.append(f"| {study.FAMILY_TITLES[family]} | " + " | ".join(
            f"{row['vus_pr']:.3f} / {row['event_f1']:.3f} / {'met' if row['goals_met'] else 'missed'}"
            for row in (report["single_seeds"][seed][family] for seed in report["seeds"])) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
