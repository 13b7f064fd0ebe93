"""``dlcli serve RUN``: a finished run's predictions over HTTP (FastAPI + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import typer

from dlcli import startup
from dlcli.cli.common import DEBUG, PLUGINS, err, escape, out, use_plugins, user_errors
from dlcli.cli.eval import CHECKPOINT, RUN
from dlcli.cli.predict import OUTPUT_DIR
from dlcli.errors import DlcliError

INSTALL = 'pip install "dlcli[serve]"'


def serve_command(
    run: str = RUN,
    host: str = typer.Option("127.0.0.1", "--host", metavar="ADDRESS",
                             help="The address to listen on. 127.0.0.1 takes requests from this machine only; put "
                                  "a reverse proxy (nginx, caddy) in front rather than 0.0.0.0."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535, help="The TCP port to listen on."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Server processes, each with its own copy of the model and share of the cores."),
    backend: str = typer.Option("torch", "--backend", metavar="torch|onnx",
                                help="torch (the checkpoint) or onnx (onnxruntime on <run>/export/model.onnx, "
                                     "exported first if missing)."),
    max_batch: int = typer.Option(64, "--max-batch", min=1,
                                  help="The most inputs of concurrent requests run in one forward pass."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0.0,
                                      help="How long a batch waits for requests still being read to join it (a lone "
                                           "request never waits)."),
    threads: int = typer.Option(None, "--threads", min=1, show_default=False,
                                help="CPU threads per worker for the model (default: the cores / --workers)."),
    checkpoint: str = CHECKPOINT,
    output_dir: str = OUTPUT_DIR,
    plugin: list[str] = PLUGINS,
    debug: bool = DEBUG,
) -> None:
    """Serve a run's predictions over HTTP: POST /predict, GET /health, GET /metadata, docs at /docs.

    Inputs go through the run's saved preprocessing, as with `dlcli predict`. Concurrent requests share
    forward passes (up to --max-batch inputs). Needs the `serve` extra (FastAPI, uvicorn, python-multipart).

    Examples: `dlcli serve last`, `dlcli serve last --port 9000 --backend onnx`.
    """
    with user_errors(debug):
        import importlib.util

        missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
        if missing:
            names = ", ".join("python-multipart" if m == "multipart" else m for m in missing)
            raise DlcliError(f"dlcli serve needs {names}: {INSTALL}")
        use_plugins(plugin)
        _check_port(host, port)
        import json
        import os

        import uvicorn

        from dlcli.serve.app import ENV, create_app, default_threads
        from dlcli.training.reload import load_run

        loaded = load_run(run, output_dir)
        threads = threads or default_threads(workers)
        app = create_app(loaded, backend, checkpoint, max_batch, max_wait_ms, threads)  # loads the model: errors exit 2
        out.print(f"serving run {escape(loaded.run_dir.name)} ({loaded.task}, {backend}) on http://{host}:{port} "
                  f"(docs: /docs); Ctrl+C stops it", soft_wrap=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"[yellow]warning:[/] listening on {escape(host)}: anyone who can reach this address can "
                      "use the model; put a reverse proxy with TLS and limits in front", soft_wrap=True)
        startup.settle()  # the model is loaded: the collector runs again while serving (dlcli/startup.py)
        if workers == 1:
            uvicorn.run(app, host=host, port=port, log_level="warning")
        else:  # each worker process builds its own app from these settings
            os.environ[ENV] = json.dumps({"run": str(loaded.run_dir), "output_dir": str(output_dir),
                                          "backend": backend, "checkpoint": checkpoint, "max_batch": max_batch,
                                          "max_wait_ms": max_wait_ms, "threads": threads})
            del app
            uvicorn.run("dlcli.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                        log_level="warning")


def _check_port(host: str, port: int) -> None:
    """A DlcliError when the address cannot be bound (in use, not this machine's), before the model loads."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise DlcliError(f"--host {host}: cannot resolve it ({e.strerror or e})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as e:
            hint = "; pick another with --port, or stop what listens there" if e.errno == 98 else ""
            raise DlcliError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
