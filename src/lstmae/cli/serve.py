"""`lstmae serve`: one model directory -> an HTTP service (see lstmae.serve.app). Parse, load, run."""
from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import tempfile
from pathlib import Path

import click


def register(cli: click.Group) -> None:
    """Add the `serve` command to the `lstmae` group (once; a second call does nothing)."""
    if "serve" in cli.commands:
        return

    @cli.command("serve")
    @click.argument("model_dir", type=click.Path(path_type=Path))
    @click.option("--host", default="127.0.0.1", show_default=True,
                  help="Address to listen on. The service has no authentication and no TLS: keep it on "
                       "127.0.0.1, or put it behind a proxy that has them.")
    @click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
    @click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
                  help="Worker processes. Each loads the model (a private copy of MODEL_DIR as it was at start, "
                       "so every worker serves the same model even if MODEL_DIR is replaced) and keeps its own "
                       "metrics; with more than 1, /v1/stream is off (answers 409), since each process would see "
                       "part of an entity's rows.")
    @click.option("--max-rows", type=click.IntRange(1), default=100_000, show_default=True,
                  help="Rows per request; more gets 413.")
    @click.option("--max-entities", type=click.IntRange(1), default=10_000, show_default=True,
                  help="Entities the streaming scorer holds at once; a new one past it gets 429.")
    @click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
                  help="Torch threads per worker. One row's window is too little work to split, and on a busy "
                       "machine threads that wait for each other multiply latency; raise it for large batches "
                       "on idle cores.")
    @click.option("--access-log/--no-access-log", default=True, show_default=True,
                  help="One line per request on stderr.")
    def serve(model_dir, host, port, workers, max_rows, max_entities, threads, access_log):
        """Serve a model over HTTP: batch scoring, per-entity streaming, health, Prometheus metrics.

        \b
        Endpoints (JSON; errors are 4xx {"error", "field", "fix"}):
          POST   /v1/score                rows -> score, is_anomaly, alarm, valid per row
          POST   /v1/stream/ENTITY_ID     rows of one entity as they arrive -> causal scores, alarms
          DELETE /v1/stream/ENTITY_ID     forget an entity's state
          GET    /v1/model                window, features, threshold, limits
          GET    /healthz  /readyz  /metrics   (API docs: /docs)

        The model is loaded before the server starts: a bad MODEL_DIR exits with code 2. Needs the
        serve extra: pip install 'lstmae[serve]'.

        \b
        Example:
          lstmae serve model --port 8000 &
          curl -s localhost:8000/v1/model
          curl -s localhost:8000/v1/stream/pump-7 -H 'Content-Type: application/json' \\
               -d '{"rows": [{"temp": 71.2, "pressure": 3.05}]}'
          curl -s localhost:8000/v1/score -H 'Content-Type: application/json' \\
               -d '{"columns": ["temp", "pressure"], "data": [[71.2, 3.05], [71.4, 3.01], ...]}'
        """
        from .main import UserError

        try:
            import fastapi  # noqa: F401
            import prometheus_client  # noqa: F401
            import uvicorn
        except ImportError as err:
            raise UserError(f"lstmae serve needs the serve extra ({err.name} is missing): "
                            "pip install 'lstmae[serve]'") from None
        import torch

        from ..estimator import load
        from ..serve.app import LIMITS_ENV, MODEL_DIR_ENV, THREADS_ENV, create_app

        torch.set_num_threads(threads)

        limits = {"max_rows": max_rows, "max_entities": max_entities}
        model = load(model_dir)  # a bad directory: ModelFileError -> one line, exit 2
        app = create_app(model, **limits, streaming=workers == 1)  # refuses a sequences model: exit 2
        try:  # uvicorn logs a taken port and exits 3 with no fix
            with socket.create_server((host, port)) as probe:
                port = probe.getsockname()[1]  # --port 0: the free port the system picked, for the banner
        except OSError as err:
            fix = ("choose another --port, or stop what is listening there" if err.errno == errno.EADDRINUSE
                   else "check --host: an address of this machine, e.g. 127.0.0.1 or 0.0.0.0")
            raise UserError(f"cannot listen on {host}:{port} ({err.strerror or err}); {fix}") from None
        if not _is_loopback(host):
            click.echo(f"warning: listening on {host}: anyone who reaches it can score and stream, with no "
                       "authentication or TLS", err=True)
        service = app.state.service
        if workers == 1 and service.no_stream is not None:
            click.echo(f"warning: {service.no_stream[0]}; POST /v1/score works", err=True)
        click.echo(f"serving {model_dir} on http://{host}:{port} (window {service.window}, {len(service.features)} "
                   f"features, {threads} torch thread(s) per worker; API docs at /docs); Ctrl-C stops", err=True)
        if workers == 1:
            uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
            return
        del app  # each worker loads its own
        # ... from a private copy of the model checked here: uvicorn restarts a worker that dies, and one that
        # loaded MODEL_DIR again after it was replaced or removed would serve another model, or none
        with tempfile.TemporaryDirectory(prefix="lstmae-serve-") as snapshot:
            model.save(Path(snapshot) / "model")
            del model
            os.environ[MODEL_DIR_ENV] = str(Path(snapshot) / "model")
            os.environ[LIMITS_ENV] = json.dumps(limits)
            os.environ[THREADS_ENV] = str(threads)
            uvicorn.run("lstmae.serve.app:app_from_environment", factory=True, host=host, port=port,
                        workers=workers, access_log=access_log, log_level="info")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
