"""The Docker target's reverse proxy: what it costs per request, and what it buys on a model update.

Through the real engine on a scratch stack (`proxy-bench`, ports 24080/24000): up once, then
1. latency: wrk (1 thread, batch-1 V2 requests) at concurrency 1 and 8 through the proxy's host port and
   directly to the server container's address on the stack's network, interleaved, side by side (p50, p99, ratio);
2. failed requests across a model update: 4 threads with keep-alive connections at `--rate` req/s (bounded)
   while `pulumi up` replaces the model's containers (tests/load.py; the new image is built by a targeted
   `up` before the load starts);
then destroy (and remove the image tags its builds left).

`--root DIR` runs another checkout's program (e.g. an export of a commit before the proxy, whose server owns the
host port), for the "before" figure of 2.; the latency rows need the proxy and are skipped there.
Run: `python bench/proxy.py [--root DIR] [--rate 600] [--seconds 5]`.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import docker
import yaml
from pulumi import automation as auto

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
from bench.serve import wrk  # noqa: E402
from tests.infra.engine import LINKED, remove_registry_images  # noqa: E402
from tests.load import BODY, PATH, Load, answer_of  # noqa: E402

STACK = "proxy-bench"
HOST_PORT, REGISTRY_PORT = 24080, 24000
STORE = str(HERE / ".modelship" / "store")
OLD, NEW = {"epochs": 2, "search": []}, {"epochs": 3, "search": []}


def config(model: dict) -> dict:
    return {"config": {f"modelship:{k}": v for k, v in {
        "target": "docker",
        "model": {"overrides": model, "storeDir": STORE},
        "gate": {"thresholds": {"accuracy": 0.8}},
        "registry": {"kind": "local", "port": REGISTRY_PORT},
        "workload": {"hostPort": HOST_PORT},
        "monitoring": {"enabled": False},
    }.items()}}


def scratch_stack(root: Path, tmp: Path) -> auto.Stack:
    work = tmp / "project"
    work.mkdir()
    for entry in LINKED:
        target = root / entry if (root / entry).exists() else HERE / entry  # an export has no venv of its own
        (work / entry).symlink_to(target)
    shutil.copy(root / "Pulumi.yaml", work / "Pulumi.yaml")
    (tmp / "state").mkdir()
    env = {"PULUMI_BACKEND_URL": f"file://{tmp / 'state'}", "PULUMI_CONFIG_PASSPHRASE": "bench",
           "PULUMI_SKIP_UPDATE_CHECK": "true", "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true"}
    return auto.create_or_select_stack(stack_name=STACK, work_dir=str(work), opts=auto.LocalWorkspaceOptions(env_vars=env))


def write(stack: auto.Stack, model: dict) -> None:
    (Path(stack.workspace.work_dir) / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(config(model)))


def latency(endpoint: str, client: docker.DockerClient, seconds: float, work: Path) -> None:
    (server,) = [c for c in client.containers.list(filters={"label": f"ai.modelship.stack=modelship/{STACK}"})
                 if "ai.modelship.model_id" in c.labels]
    address = next(iter(server.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    direct = f"http://{address}:8080"
    script = work / "infer.lua"
    script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{BODY}]==]\n')
    for url in (direct, endpoint):  # warm both paths
        wrk(url + PATH, script, 8, 1)
    print(f"latency, batch-1 V2 infer, wrk 1 thread, {seconds:g} s per cell (direct = the server container's address)")
    print(f"{'conc':>4}  {'direct p50':>10} {'proxy p50':>10} {'ratio':>6}  {'direct p99':>10} {'proxy p99':>10} {'ratio':>6}  "
          f"{'direct rps':>10} {'proxy rps':>10}")
    for connections in (1, 8):
        a = wrk(direct + PATH, script, connections, seconds)
        b = wrk(endpoint + PATH, script, connections, seconds)
        print(f"{connections:>4}  {a.p50_ms:>8.2f}ms {b.p50_ms:>8.2f}ms {b.p50_ms / a.p50_ms:>6.2f}  "
              f"{a.p99_ms:>8.2f}ms {b.p99_ms:>8.2f}ms {b.p99_ms / a.p99_ms:>6.2f}  {a.rps:>10.0f} {b.rps:>10.0f}"
              f"{'  errors ' + str(a.errors + b.errors) if a.errors + b.errors else ''}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=HERE, help="the checkout whose program runs (default: this one)")
    parser.add_argument("--rate", type=float, default=600.0, help="load during the update, req/s over 4 threads")
    parser.add_argument("--seconds", type=float, default=5.0, help="per latency cell")
    args = parser.parse_args()
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmp:
        stack = scratch_stack(args.root.resolve(), Path(tmp))
        try:
            write(stack, OLD)
            stack.up()
            endpoint = stack.outputs()["endpoint"].value
            if (args.root.resolve() / "infra" / "proxy.py").exists():
                latency(endpoint, client, args.seconds, Path(tmp))
            old = answer_of(endpoint)
            write(stack, NEW)
            # The new image first (trained, gated, built, pushed): the load spans the switch, not the build.
            stack.up(target=[f"urn:pulumi:{STACK}::modelship::modelship:infra:ModelImage$docker-build:index:Image::image"])
            with Load(endpoint, rate=args.rate, threads=4) as load:
                time.sleep(1)
                started = time.monotonic()
                stack.up()
                up_s = time.monotonic() - started
                time.sleep(2)
            new = answer_of(endpoint)
            print(f"model update ({args.root.resolve()}): up {up_s:.1f} s; {load.tally.summary()}; "
                  f"new model serving: {new != old}")
        finally:
            stack.destroy()
            stack.workspace.remove_stack(STACK)
            remove_registry_images(client, REGISTRY_PORT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
