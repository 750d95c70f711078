"""Serving benchmark: modelship's server against (a) the seed's FastAPI + TensorFlow, (b) BentoML and (d) KServe's
Python ModelServer (both on the same LiteRT), beside (c) the limit: a bare ASGI app on the same HTTP stack
(uvicorn + httptools + uvloop) answering fixed bytes.

Same model (the default config's store entry), same request bytes (TF Serving row format), loaded by wrk
from a separate process on 127.0.0.1: throughput and p50/p99 latency at concurrency 1, 8, 64 for batch-1 and
batch-32 requests, printed side by side with ratios. Then our p99 at half our peak rate, and, with Docker:
our image's size against the same server stack on tensorflow-cpu, and container start-to-ready time.

Run: `python bench/serve.py [--seconds 3] [--no-images]` (or `make bench`). BentoML and KServe live in their own
virtualenvs under $MODELSHIP_CACHE/bench (made on first run); fastapi is the project venv's (pinned in BASELINE_PINS).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASELINES = Path(__file__).resolve().parent / "baselines"
CACHE = Path(os.environ.get("MODELSHIP_CACHE", Path.home() / ".cache" / "modelship"))
BENTOML = "1.4.40"
KSERVE = "0.21.0"
BASELINE_PINS = {"fastapi": "0.163.2", "bentoml": BENTOML, "kserve": KSERVE}
# TF Serving's CPU image (tensorflow/serving, compressed in the registry), for the size line: not pulled here.
TF_SERVING_MB = 100
BASE_IMAGE = os.environ.get("BASE_IMAGE", "modelship/python-base:3.11")
CONCURRENCY = (1, 8, 64)
BATCHES = (1, 32)


@dataclass
class Cell:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass
class Server:
    label: str
    command: list[str]
    path: str  # the predict route, TF Serving row format body
    ready_path: str
    port: int
    env: Optional[dict[str, str]] = None
    process: Optional[subprocess.Popen] = None
    cwd: Optional[Path] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, logs: Path) -> None:
        log = open(logs / f"{self.label.split()[0]}.log", "w")
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd,
                                        env={**os.environ, **(self.env or {})}, start_new_session=True)
        wait_ready(self.url + self.ready_path, 180, self.process, log.name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)


def wait_ready(url: str, timeout: float, process: Optional[subprocess.Popen] = None, log: str = "") -> float:
    """Seconds until `url` answers 200; raises if the process dies or time runs out."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError(f"{url} not ready after {timeout} s; see {log}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_entry() -> Path:
    """The default config's entry in the project store (trained once, then reused)."""
    from model import Store, trained_entry
    from model.config import load

    return Path(trained_entry(load(ROOT / "model" / "configs" / "digits.yaml").train, Store(ROOT / ".modelship" / "store")))


def peer_python(package: str, version: str) -> Path:
    """A virtualenv of its own for a peer server (its pins would clash with ours), with our LiteRT and numpy."""
    venv = CACHE / "bench" / f"{package}-{version}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    if not done.exists():
        print(f"installing {package} {version} into {venv} (first run only)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"{package}=={version}",
                        f"ai-edge-litert=={_pinned('ai-edge-litert')}", f"numpy=={_pinned('numpy')}"], check=True)
        done.touch()
    return python


def lua_body(path: Path, rows: np.ndarray) -> Path:
    body = json.dumps({"instances": rows.tolist()})
    path.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[{body}]==]\n')
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, script: Path, connections: int, seconds: float) -> Cell:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def latency(pct: str) -> float:
        value, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * _UNITS[unit]

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Cell(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), latency("50"), latency("99"), errors)


def paced(url: str, rows: np.ndarray, rate: float, seconds: float, work: Path) -> Cell:
    """Closed loop with think time: 8 connections, each waiting so the total stays near `rate` req/s."""
    connections = 8
    delay_ms = max(1, int(connections * 1000 / rate))
    script = lua_body(work / "paced.lua", rows)
    script.write_text(script.read_text() + f"function delay() return {delay_ms} end\n")
    return wrk(url, script, connections, seconds)


def load_table(servers: list[Server], digits: np.ndarray, seconds: float, work: Path) -> dict:
    results: dict[tuple[int, int, str], Cell] = {}
    for batch in BATCHES:
        script = lua_body(work / f"batch{batch}.lua", digits[:batch])
        for server in servers:  # warm every server on this body first (first requests pay compilation, caches)
            wrk(server.url + server.path, script, 8, 1)
        for connections in CONCURRENCY:
            # Servers interleaved per cell, so load from other processes on the machine hits them alike.
            for server in servers:
                results[(batch, connections, server.label)] = wrk(server.url + server.path, script, connections, seconds)
                cell = results[(batch, connections, server.label)]
                print(f"  batch {batch:>2} c {connections:>2} {server.label:<22} {cell.rps:>8.0f} req/s "
                      f"p50 {cell.p50_ms:7.2f} ms p99 {cell.p99_ms:7.2f} ms errors {cell.errors}", flush=True)
    return results


def print_table(results: dict, servers: list[Server]) -> None:
    ours, others = servers[0].label, [s.label for s in servers[1:]]
    head = f"| batch | conc | {ours} req/s | p50 ms | p99 ms |"
    for other in others:
        head += f" {other} req/s | p50 ms | p99 ms | ratio |"
    print("\n" + head)
    print("|" + "---|" * (5 + 4 * len(others)))
    for batch in BATCHES:
        for connections in CONCURRENCY:
            mine = results[(batch, connections, ours)]
            line = f"| {batch} | {connections} | {mine.rps:.0f} | {mine.p50_ms:.2f} | {mine.p99_ms:.2f} |"
            for other in others:
                cell = results[(batch, connections, other)]
                ratio = f"{mine.rps / cell.rps:.1f}x" if cell.rps else "n/a (none answered)"
                line += f" {cell.rps:.0f} | {cell.p50_ms:.2f} | {cell.p99_ms:.2f} | {ratio} |"
            print(line)
    bad = [(k, c.errors) for k, c in results.items() if c.errors]
    if bad:
        print(f"\nWARNING: cells with non-2xx answers or socket errors: {bad}")


# ---- images -------------------------------------------------------------------------------------------------

def docker(*args: str, capture: bool = True, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=capture, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])} ... failed: {result.stderr.strip()[-2000:]}")
    return (result.stdout or "").strip()


def build(context: Path, tag: str, build_args: dict[str, str]) -> int:
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    docker("build", "--network", "none", "-q", "-t", tag, *args, str(context))
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag))


def image_figures(entry: Path, work: Path) -> list[str]:
    from infra.image import app_hash, build_context, image_tag

    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        return [f"images: base image {BASE_IMAGE} is not built; build it first (toolchain), or set BASE_IMAGE"]
    model_id = json.loads((entry / "report.json").read_text())["model_id"]
    tag = image_tag(model_id, app_hash(ROOT / "app"))
    ours_context = build_context(tag, entry, ROOT / "app", work / "build")
    ours = f"modelship-bench/app:{tag}"
    ours_size = build(ours_context, ours, {"BASE_IMAGE": BASE_IMAGE, "MODEL_ID": model_id})

    # The same server stack on tensorflow-cpu instead of LiteRT: what the image would weigh with TensorFlow.
    tf_context = work / "tf-context"
    shutil.copytree(ours_context, tf_context, ignore=shutil.ignore_patterns("wheels"))
    requirements = tf_context / "requirements.txt"
    pins = [line for line in requirements.read_text().splitlines() if not line.startswith("ai-edge-litert")]
    requirements.write_text("\n".join(pins + [f"tensorflow-cpu=={_pinned('tensorflow-cpu')}"]) + "\n")
    subprocess.run([str(ROOT / "toolchain" / "wheels.sh"), str(requirements), str(tf_context / "wheels")], check=True,
                   stdout=subprocess.DEVNULL)
    tf_size = build(tf_context, "modelship-bench/app-tensorflow:latest-local", {"BASE_IMAGE": BASE_IMAGE})

    starts, server_ready, bare = [], [], []
    for _ in range(3):
        begun = time.perf_counter()
        docker("run", "--rm", "--read-only", "--entrypoint", "true", ours)
        bare.append(time.perf_counter() - begun)
        port = free_port()
        begun = time.perf_counter()
        container = docker("run", "-d", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
                           "--security-opt", "no-new-privileges", "-p", f"127.0.0.1:{port}:8080", ours)
        try:
            wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", 60)
            starts.append(time.perf_counter() - begun)
            found = re.search(r"ready in ([\d.]+) s", docker("logs", container))
            if found:
                server_ready.append(float(found.group(1)))
        finally:
            docker("rm", "-f", container)
    mib = 1024 * 1024
    return [
        f"image size: ours {ours_size / mib:.0f} MiB ({ours_size / 1e6:.0f} MB; {compressed_size(ours) / 1e6:.0f} MB "
        f"gzipped, as a registry stores it) vs TF Serving's CPU image about {TF_SERVING_MB} MB; vs tensorflow-cpu "
        f"{tf_size / mib:.0f} MiB ({tf_size / ours_size:.1f}x larger), base {BASE_IMAGE} "
        f"{int(docker('image', 'inspect', '-f', '{{.Size}}', BASE_IMAGE)) / mib:.0f} MiB",
        f"start-to-ready (docker run -> /v2/health/ready 200, --read-only, median of 3): {statistics.median(starts):.2f} s"
        + f"; docker's own run of `true` in the same image: {statistics.median(bare):.2f} s"
        + (f"; the server's model load + warm-up: {statistics.median(server_ready) * 1000:.0f} ms" if server_ready else ""),
    ]


def compressed_size(image: str) -> int:
    """Bytes of the image's layers gzipped (what a push uploads and a registry lists)."""
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    size = int(subprocess.run(["bash", "-c", "gzip -6 | wc -c"], stdin=save.stdout, capture_output=True, text=True,
                              check=True).stdout)
    save.wait()
    return size


def _pinned(package: str) -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise RuntimeError(f"{package} is not pinned in requirements.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="load per cell (default 3)")
    parser.add_argument("--no-images", action="store_true", help="skip the Docker figures")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `apt-get install wrk` (toolchain/host-packages.sh installs it)")
    from sklearn.datasets import load_digits

    digits = load_digits().data.astype(np.float32)
    entry = store_entry()
    print(f"store entry {entry}", flush=True)
    bento = peer_python("bentoml", BENTOML)
    kserve = peer_python("kserve", KSERVE)
    python = sys.executable
    servers = [
        Server("modelship", [python, "-m", "app", "--model", str(entry), "--host", "127.0.0.1", "--port", "{port}"],
               "/v1/models/model:predict", "/v2/health/ready", free_port(), cwd=ROOT),
        Server("bare asgi (limit)", [python, str(BASELINES / "bare_asgi.py"), "{port}"], "/v1/models/model:predict", "/",
               free_port()),
        Server("fastapi+tf (seed)", [python, str(BASELINES / "fastapi_tf.py"), str(entry), "{port}"],
               "/v1/models/model:predict", "/ready", free_port()),
        Server(f"bentoml {BENTOML}", [str(bento.parent / "bentoml"), "serve", "bentoml_litert:Digits", "--host", "127.0.0.1",
                                      "--port", "{port}"], "/predict", "/readyz", free_port(),
               env={"MODEL_TFLITE": str(entry / "model.tflite"), "BENTOML_HOME": str(CACHE / "bench" / "bentoml-home")},
               cwd=BASELINES),
        Server(f"kserve {KSERVE}", [str(kserve), "kserve_litert.py", str(entry / "model.tflite"), "{port}"],
               "/v1/models/model:predict", "/v1/models/model", free_port(), cwd=BASELINES),
    ]
    with tempfile.TemporaryDirectory(prefix="modelship-bench-") as tmp:
        work = Path(tmp)
        try:
            for server in servers:
                server.command = [part.replace("{port}", str(server.port)) for part in server.command]
                server.start(work)
            print(f"load: wrk, 1 thread, {args.seconds:g} s per cell; pins {BASELINE_PINS}", flush=True)
            results = load_table(servers, digits, args.seconds, work)
            peak = max(results[(1, c, servers[0].label)].rps for c in CONCURRENCY)
            half = paced(servers[0].url + servers[0].path, digits[:1], peak / 2, args.seconds, work)
        finally:
            for server in servers:
                server.stop()
        print_table(results, servers)
        print(f"\nmodelship at half its batch-1 peak ({peak / 2:.0f} req/s asked, {half.rps:.0f} served): "
              f"p50 {half.p50_ms:.2f} ms, p99 {half.p99_ms:.2f} ms")
        if not args.no_images:
            for line in image_figures(entry, work):
                print(line)


if __name__ == "__main__":
    main()
