"""Load on `lstmae serve` over HTTP on 127.0.0.1: requests/s and p50/p99 latency, bounded.

    python benchmarks/serve_load.py [--requests 2000] [--batch-requests 200] [--seconds 60]
                                    [--out benchmarks/results]

The default (128, 64) tanh model with random weights (epochs=0), 8 features, window 30, saved to a
temporary directory and served by `lstmae serve MODEL --no-access-log` (its defaults otherwise:
1 worker, 1 torch thread) in a subprocess on a free port of 127.0.0.1; nothing else is contacted.
One client (httpx, keep-alive, one request at a time) then runs, each scenario stopping at its
request count or after --seconds, whichever comes first:

- stream: one-row POST /v1/stream/{entity} to 10 entities in turn (each entity first gets its
  29 warm-up rows, untimed), --requests requests;
- batch: POST /v1/score with 1000 rows (columns/data form), --batch-requests requests.

The same work in-process (StreamingScorer.update of one row; series.score_values of 1000 rows,
1 torch thread) is timed too, so the HTTP share of the latency shows. Latency is the client's
wall time per request, send to parsed answer. Client and server share the machine's cores; the
load average before and after is recorded (the machine may be shared with other work).
Writes serve_load.{json,md} to --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_name  # benchmarks/ is on sys.path when a script there runs

WINDOW, N_FEATURES, N_ENTITIES, BATCH_ROWS = 30, 8, 10, 1000
FEATURES = [f"x{j}" for j in range(N_FEATURES)]
SERVE = ("import sys; from lstmae.cli.main import cli; from lstmae.cli.serve import register; register(cli); "
         "cli(sys.argv[1:], prog_name='lstmae')")


def series(n: int, seed: int) -> np.ndarray:
    """(n, 8) smooth signals with noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    return (np.sin(t / (5 + 3 * np.arange(N_FEATURES))) + 0.1 * rng.standard_normal((n, N_FEATURES))).astype(
        np.float32)


def summary(latencies: list[float], elapsed: float, rows_per_request: int, errors: int) -> dict:
    ms = np.asarray(latencies) * 1e3
    return {"requests": len(ms), "errors": errors, "seconds": round(elapsed, 2),
            "requests_per_s": round(len(ms) / elapsed, 1), "rows_per_s": round(len(ms) * rows_per_request / elapsed),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


def run(call, count: int, seconds: float, rows_per_request: int, server_pid: int | None = None) -> dict:
    """`call(i)` (True when the answer was right) up to `count` times or for `seconds`; the summary, with
    the CPU time per request of this process and of the server's (which other load inflates far less
    than wall time)."""
    latencies, errors, start = [], 0, time.perf_counter()
    cpu, server_cpu = time.process_time(), cpu_seconds(server_pid)
    for i in range(count):
        if time.perf_counter() - start > seconds:
            break
        begin = time.perf_counter()
        ok = call(i)
        latencies.append(time.perf_counter() - begin)
        errors += not ok
    result = summary(latencies, time.perf_counter() - start, rows_per_request, errors)
    result["cpu_ms_per_request"] = round((time.process_time() - cpu) / len(latencies) * 1e3, 2)
    if server_cpu is not None:
        result["server_cpu_ms_per_request"] = round((cpu_seconds(server_pid) - server_cpu) / len(latencies) * 1e3, 2)
    return result


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="one-row streaming requests")
    parser.add_argument("--batch-requests", type=int, default=200, help="1000-row batch requests")
    parser.add_argument("--seconds", type=float, default=60.0, help="time cap per scenario")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()

    import httpx
    import torch

    import lstmae
    from lstmae import LSTMAutoencoder
    from lstmae.series import fit_series, score_values
    from lstmae.streaming import StreamingScorer

    torch.set_num_threads(1)  # as the server runs
    load_before = os.getloadavg()
    model = fit_series(LSTMAutoencoder(epochs=0, random_state=0, progress=False), series(3000, 0), window=WINDOW,
                       feature_names=FEATURES)
    stream_rows = series(args.requests + N_ENTITIES * WINDOW, 1)
    batch = series(BATCH_ROWS, 2)
    results = {"scenarios": {}, "in_process": {}}

    # The same work without HTTP, for comparison.
    scorer = StreamingScorer(model)
    for entity in range(N_ENTITIES):
        scorer.update(stream_rows[: WINDOW - 1], entity=entity)
    results["in_process"]["stream_update_1_row"] = run(
        lambda i: bool(scorer.update(stream_rows[WINDOW + i: WINDOW + i + 1], entity=i % N_ENTITIES)["valid"].all()),
        min(args.requests, 500), args.seconds, 1)
    results["in_process"]["score_values_1000_rows"] = run(
        lambda i: len(score_values(model, batch)) == BATCH_ROWS, min(args.batch_requests, 50), args.seconds,
        BATCH_ROWS)

    with tempfile.TemporaryDirectory() as folder, socket.socket() as probe:
        model.save(Path(folder) / "model")
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = subprocess.Popen([sys.executable, "-c", SERVE, "serve", str(Path(folder) / "model"), "--host",
                                   "127.0.0.1", "--port", str(port), "--no-access-log"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:]}")
                    time.sleep(0.2)
                for entity in range(N_ENTITIES):  # warm-up rows: untimed
                    client.post(f"/v1/stream/e{entity}", json={"columns": FEATURES,
                                                                "data": stream_rows[: WINDOW - 1].tolist()})

                def stream(i):
                    row = stream_rows[WINDOW + i].tolist()
                    answer = client.post(f"/v1/stream/e{i % N_ENTITIES}", json={"rows": [dict(zip(FEATURES, row))]})
                    return answer.status_code == 200 and answer.json()["results"][0]["valid"]

                batch_body = json.dumps({"columns": FEATURES, "data": batch.tolist()}).encode()

                def score(i):
                    answer = client.post("/v1/score", content=batch_body,
                                         headers={"Content-Type": "application/json"})
                    return answer.status_code == 200 and len(answer.json()["results"]) == BATCH_ROWS

                results["scenarios"]["stream_1_row_10_entities"] = run(stream, args.requests, args.seconds, 1,
                                                                       server.pid)
                results["scenarios"]["score_batch_1000_rows"] = run(score, args.batch_requests, args.seconds,
                                                                    BATCH_ROWS, server.pid)
                metrics = client.get("/metrics").text
                results["server_metrics"] = [line for line in metrics.splitlines()
                                             if line.startswith(("lstmae_rows_scored_total", "lstmae_stream_entities",
                                                                 "lstmae_http_requests_total"))]
        finally:
            server.terminate()
            server.communicate(timeout=30)

    results["setup"] = {
        "model": "LSTMAutoencoder() defaults: encoder (128, 64) tanh, random weights (epochs=0)",
        "window": WINDOW, "features": N_FEATURES, "entities": N_ENTITIES, "batch_rows": BATCH_ROWS,
        "server": "lstmae serve MODEL --no-access-log (1 worker, 1 torch thread), 127.0.0.1",
        "client": "httpx, one keep-alive connection, one request at a time, same machine",
        "caps": {"stream_requests": args.requests, "batch_requests": args.batch_requests,
                 "seconds_per_scenario": args.seconds},
        "cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {cpu_name()}",
        "versions": {"lstmae": lstmae.__version__, "torch": torch.__version__, "python": platform.python_version(),
                     **{name: _version(name) for name in ("fastapi", "uvicorn", "httpx")}},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serve_load.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "serve_load.md").write_text(markdown(results))
    print(markdown(results))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _cpu(r: dict) -> str:
    if "server_cpu_ms_per_request" in r:
        return f"{r['server_cpu_ms_per_request']}; {r['cpu_ms_per_request']}"
    return f"{r['cpu_ms_per_request']} (in-process)"


def markdown(results: dict) -> str:
    setup = results["setup"]
    lines = ["# lstmae serve under load (localhost)", "",
             f"{setup['model']}; window {setup['window']}, {setup['features']} features. Server: {setup['server']}. "
             f"Client: {setup['client']}. Each scenario stops at its request count or after "
             f"{setup['caps']['seconds_per_scenario']:g} s. {setup['cpus']} CPUs; load average (1, 5, 15 min) "
             f"before {setup['load_average_before']}, after {setup['load_average_after']}: the machine is shared, "
             "so these are what this run saw, not a bound.", "",
             "| scenario | requests | errors | requests/s | rows/s | p50 ms | p90 ms | p99 ms | max ms "
             "| CPU ms/request (server; client) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    names = {"stream_1_row_10_entities": "HTTP: one-row POST /v1/stream, 10 entities in turn",
             "score_batch_1000_rows": "HTTP: POST /v1/score, 1000 rows",
             "stream_update_1_row": "in-process: StreamingScorer.update, one row",
             "score_values_1000_rows": "in-process: series.score_values, 1000 rows"}
    for group in ("scenarios", "in_process"):
        for key, r in results[group].items():
            lines.append(f"| {names[key]} | {r['requests']} | {r['errors']} | {r['requests_per_s']} "
                         f"| {r['rows_per_s']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['max_ms']} | {_cpu(r)} |")
    stream = results["scenarios"]["stream_1_row_10_entities"]
    lines += ["", f"Goal: p99 of a one-row HTTP update under 20 ms: **{stream['p99_ms']} ms, "
                  f"{'met' if stream['p99_ms'] < 20 else 'not met'}** in this run. The CPU time per request "
                  "(server process; client process) is what the work costs; wall-time latency above it is "
                  "waiting for a core.", "",
              f"Versions: {setup['versions']}. Produced by `python benchmarks/serve_load.py`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
