"""`python -m app --model DIR [--host H] [--port P] [--workers N]`; the environment (docs/contracts.md) fills the rest."""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from app.settings import Settings

# Under Kubernetes' default 30 s termination grace, so in-flight requests finish before SIGKILL.
GRACEFUL_SHUTDOWN_S = 20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app", description="Serve a modelship store entry over TF Serving REST and Open Inference V2.")
    parser.add_argument("--model", type=Path, help="store entry directory (env MODEL_DIR, default /model)")
    parser.add_argument("--host", help="bind address (env HOST, default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (env PORT, default 8080)")
    parser.add_argument("--workers", type=int, help="worker processes (env WORKERS, default 1)")
    args = parser.parse_args(argv)
    settings = Settings.load(model_dir=args.model, host=args.host, port=args.port, workers=args.workers)
    # Workers are separate processes that build the app from the environment.
    os.environ.update(settings.to_environ())
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Must precede prometheus_client's import in each worker; /tmp is the one writable place in the image.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelship-metrics-")

    import uvicorn

    uvicorn.run(
        "app.server:from_environ",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,  # modelship_requests_total counts every request; a log line each would cost more
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]  # a float works: it goes to call_later
        http="app.protocol:HeaderDeadlineProtocol",
    )


if __name__ == "__main__":
    main()
