"""Scale-out scoring throughput: lstmae.distributed.score_entities on a Dask LocalCluster, 1 vs 2 workers.

    .venv/bin/python benchmarks/scale_out.py                      # 1,000 entities x 10,000 rows
    .venv/bin/python benchmarks/scale_out.py --rows 1000          # 1,000 entities x 1,000 rows

The model is small on purpose, so that the 10M-row case fits in minutes: encoder (16, 8), window 20,
4 features, epochs=0 (seeded random weights; the scaler, error model and threshold are still fitted,
and scoring costs the same as for a trained model of that shape). Scoring: stride 1, lstmae's
default `how`, the default alarm rules.

The data (sines with noise, each entity its own phase and frequency, rows of all entities of a block
interleaved) is made on the workers and held there (persisted) before the clock starts; what is
timed is the whole `score_entities` graph: tagging, the shuffle on the entity column, per-entity
ordering, scoring, with the result held on the workers (not sent back). Each cluster has its own
copy of the data and the same number of partitions (8), so both do the same work. Each cluster
first scores a small slice untimed (worker start-up, model load), then 1 and 2 workers alternate,
`--repeats` times each, in one process. Workers are processes with one thread each and one torch
thread per task. Also timed once: single-process `series.score_frame` on the same rows, one torch
thread (the engine's overhead).

Writes benchmarks/results/scale_out.json and .md (rows/s, speed-up, the spread of the repeats and
the load average before and after each run: the machine may be shared).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from lstmae.config import DEFAULTS
from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs

FEATURES = ["f0", "f1", "f2", "f3"]
WINDOW = 20
ENCODER = (16, 8)
PARTITIONS = 8
HOW = DEFAULTS["how"]
RESULTS = Path(__file__).resolve().parent / "results"


def make_block(block: tuple[int, int, int]) -> pd.DataFrame:
    """Rows of entities [first, first + count) with `rows` rows each, interleaved by time step."""
    first, count, rows = block
    rng = np.random.default_rng(first)
    t = np.arange(rows, dtype=np.float32)
    entity = np.repeat(np.arange(first, first + count), rows)
    freq = rng.uniform(0.05, 0.3, size=(count, 1, 1)).astype(np.float32)
    phase = rng.uniform(0, 6.3, size=(count, 1, 4)).astype(np.float32)
    values = np.sin(freq * t[None, :, None] + phase) + 0.1 * rng.standard_normal((count, rows, 4), np.float32)
    frame = pd.DataFrame(values.reshape(-1, 4), columns=FEATURES)
    frame.insert(0, "time", np.tile(t, count))
    frame.insert(0, "entity", entity)
    order = np.argsort(frame["time"].to_numpy(), kind="stable")  # interleave the entities
    return frame.iloc[order].reset_index(drop=True)


def blocks(entities: int, rows: int) -> list[tuple[int, int, int]]:
    per = -(-entities // PARTITIONS)
    return [(first, min(per, entities - first), rows) for first in range(0, entities, per)]


def save_model(path: Path) -> None:
    import torch

    from lstmae import LSTMAutoencoder

    torch.manual_seed(0)
    X = np.stack([make_block((i, 1, WINDOW))[FEATURES].to_numpy() for i in range(2000)])
    model = LSTMAutoencoder(encoder=ENCODER, epochs=0, random_state=0, progress=False)
    model.fit(X, feature_names=FEATURES)
    model.save(path)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per entity")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-process run")
    parser.add_argument("--out", type=Path, default=RESULTS / "scale_out")
    args = parser.parse_args(argv)

    import dask
    import dask.dataframe as dd
    import distributed
    import torch
    from distributed import Client, LocalCluster, wait

    from lstmae import __version__, load
    from lstmae.distributed import score_entities
    from lstmae.series import score_frame

    warnings.simplefilter("ignore")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    n_rows = args.entities * args.rows
    work = Path(tempfile.mkdtemp(prefix="lstmae_scale_out_"))
    model_dir = work / "model"
    save_model(model_dir)
    print(f"{args.entities} entities x {args.rows} rows = {n_rows:,} rows; model {ENCODER}, window {WINDOW}",
          file=sys.stderr)

    clusters, data = {}, {}
    for workers in (1, 2):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               worker_dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster, set_as_default=False)
        ddf = dd.from_map(make_block, blocks(args.entities, args.rows))
        with client.as_current():
            data[workers] = client.persist(ddf)
            wait(data[workers])
            # Untimed warm-up: worker start-up, imports, the model loaded once per worker.
            warm = score_entities(model_dir, data[workers].partitions[:1], entity_column="entity",
                                  time_column="time", npartitions=workers, how=HOW)
            wait(client.persist(warm))
        clusters[workers] = (cluster, client)

    def timed(workers: int) -> dict:
        client = clusters[workers][1]
        before = load_average()
        with client.as_current():
            start = time.perf_counter()
            scored = score_entities(model_dir, data[workers], entity_column="entity", time_column="time",
                                    npartitions=PARTITIONS, how=HOW)
            held = client.persist(scored)
            wait(held)
            seconds = time.perf_counter() - start
            rows = int(client.compute(held.shape[0]).result())
            valid = int(client.compute(held["valid"].sum()).result())
            del held
        if rows != n_rows:
            raise RuntimeError(f"scored {rows} rows, expected {n_rows}")
        run = {"workers": workers, "seconds": round(seconds, 3), "rows_per_s": round(n_rows / seconds),
               "valid_rows": valid, "load_before": before, "load_after": load_average()}
        print(json.dumps(run), file=sys.stderr)
        return run

    runs = [timed(workers) for _ in range(args.repeats) for workers in (1, 2)]
    for cluster, client in clusters.values():
        client.close()
        cluster.close()

    baseline = None
    if not args.no_baseline:
        torch.set_num_threads(1)
        model = load(model_dir)
        frame = pd.concat([make_block(b) for b in blocks(args.entities, args.rows)], ignore_index=True)
        before = load_average()
        start = time.perf_counter()
        score_frame(model, frame.sort_values(["entity", "time"], kind="stable"), entity_column="entity", how=HOW)
        seconds = time.perf_counter() - start
        baseline = {"seconds": round(seconds, 3), "rows_per_s": round(n_rows / seconds), "load_before": before,
                    "load_after": load_average()}
        print(json.dumps({"single_process": baseline}), file=sys.stderr)

    rates = {w: [r["rows_per_s"] for r in runs if r["workers"] == w] for w in (1, 2)}
    summary = {w: {"median_rows_per_s": round(statistics.median(v)), "min": min(v), "max": max(v)}
               for w, v in rates.items()}
    speedup = summary[2]["median_rows_per_s"] / summary[1]["median_rows_per_s"]
    result = {
        "entities": args.entities, "rows_per_entity": args.rows, "rows": n_rows,
        "model": {"encoder": list(ENCODER), "window": WINDOW, "features": len(FEATURES), "epochs": 0},
        "scoring": {"stride": 1, "how": HOW, "alarms": "default", "partitions": PARTITIONS},
        "runs": runs, "summary": {str(k): v for k, v in summary.items()},
        "speedup_2_vs_1": round(speedup, 3), "single_process": baseline,
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "dask": dask.__version__, "distributed": distributed.__version__, "lstmae": __version__},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(result: dict) -> str:
    s = result["summary"]
    lines = [
        "# Scale-out scoring: Dask LocalCluster, 1 vs 2 workers",
        "",
        f"`python benchmarks/scale_out.py --entities {result['entities']} --rows {result['rows_per_entity']}`: "
        f"{result['entities']:,} entities x {result['rows_per_entity']:,} rows = {result['rows']:,} rows, "
        f"model encoder {tuple(result['model']['encoder'])}, window {result['model']['window']}, "
        f"{result['model']['features']} features, epochs=0; stride 1, how={result['scoring']['how']}, default alarms, "
        f"{result['scoring']['partitions']} partitions after the shuffle. Workers: processes, 1 thread, "
        "1 torch thread each. Timed: the whole score_entities graph (tag, shuffle, order, score), "
        "result held on the workers.",
        "",
        "| workers | median rows/s | min | max | repeats |",
        "|---|---|---|---|---|",
    ]
    for w in ("1", "2"):
        n = sum(1 for r in result["runs"] if str(r["workers"]) == w)
        lines.append(f"| {w} | {s[w]['median_rows_per_s']:,} | {s[w]['min']:,} | {s[w]['max']:,} | {n} |")
    lines += ["", f"Speed-up, 2 vs 1 worker (medians): **{result['speedup_2_vs_1']:.2f}x**.", ""]
    if result["single_process"]:
        b = result["single_process"]
        lines += [f"Single process `series.score_frame`, 1 torch thread, no Dask: {b['rows_per_s']:,} rows/s "
                  f"(load average before/after {b['load_before']} / {b['load_after']}).", ""]
    lines += ["Runs in the order made (load average 1/5/15 min before and after each):", "",
              "| workers | seconds | rows/s | load before | load after |", "|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['workers']} | {r['seconds']} | {r['rows_per_s']:,} | {r['load_before']} | "
                     f"{r['load_after']} |")
    m = result["machine"]
    lines += ["", f"Machine: {m['cpus']} cores of {m.get('cpu', 'an unrecorded CPU')}, Python {m['python']}, torch {m['torch']}, dask {m['dask']}, "
              f"distributed {m['distributed']}, lstmae {m['lstmae']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
