"""The base images toolchain/images.sh provides, used for real: Python runs and installs a wheel set offline, the
registry takes a push and serves it back, Prometheus and Alertmanager answer /-/ready.

Needs `make bootstrap` (toolchain/docker.sh, toolchain/images.sh). Every container is removed again.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MODELSHIP_CACHE", Path.home() / ".cache" / "modelship"))
FIX = "run `make bootstrap` (toolchain/docker.sh starts the engine, toolchain/images.sh builds the base images)"
LABEL = "ai.modelship.recipe"
NAMES = ("PYTHON_BASE", "REGISTRY", "PROMETHEUS", "ALERTMANAGER", "HAPROXY")
# The imports app/requirements.txt exists for (app/ imports these at start-up).
APP_IMPORTS = ("numpy", "ai_edge_litert.interpreter", "starlette", "uvicorn", "prometheus_client", "orjson", "pydantic")


def docker(*args: str, timeout: float = 300) -> str:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        pytest.fail(f"no `docker` command on PATH: {FIX}")
    if done.returncode != 0:
        pytest.fail(f"`docker {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """images.env: NAME -> local tag, NAME_SOURCE -> recipe:HASH or public:IMAGE."""
    engine = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    if engine.returncode != 0:
        pytest.fail(f"no Docker Engine answers `docker info` ({engine.stderr.strip()}): {FIX}")
    path = CACHE / "images.env"
    if not path.exists():
        pytest.fail(f"{path} is missing: {FIX}")
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return dict(pairs)


@contextlib.contextmanager
def container(image: str, *args: str, port: int) -> Iterator[tuple[str, str]]:
    """A detached container publishing `port` on a free loopback port: yields (id, base URL); removed on exit."""
    cid = docker("run", "-d", "--label", "ai.modelship.test=base-images", "-p", f"127.0.0.1::{port}", image, *args)
    try:
        host_port = docker("port", cid, f"{port}/tcp").splitlines()[0].rsplit(":", 1)[1]
        yield cid, f"http://127.0.0.1:{host_port}"
    finally:
        docker("rm", "-f", "-v", cid)


def wait_ok(cid: str, url: str, deadline_s: float = 60) -> bytes:
    """The body of the first 200 from `url`; fails with the container's log when none comes in time."""
    end = time.monotonic() + deadline_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.read()
        except (urllib.error.URLError, ConnectionError) as error:
            if time.monotonic() > end:
                pytest.fail(f"{url} did not answer 200 within {deadline_s}s ({error}); container log:\n"
                            + docker("logs", "--tail", "30", cid))
            time.sleep(0.5)


def wheels(requirements: Path, out: Path) -> None:
    done = subprocess.run([str(ROOT / "toolchain" / "wheels.sh"), str(requirements), str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"toolchain/wheels.sh failed:\n{done.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_image_is_from_its_recipe_or_the_public_image(images: dict[str, str], name: str) -> None:
    tag, source = images[name], images[f"{name}_SOURCE"]
    labels = json.loads(docker("image", "inspect", "-f", "{{json .Config.Labels}}", tag)) or {}
    kind, _, ref = source.partition(":")
    if kind == "recipe":
        assert labels.get(LABEL) == ref, f"{tag} carries recipe {labels.get(LABEL)}, images.env says {ref}"
    else:
        assert kind == "public", source
        assert docker("image", "inspect", "-f", "{{.Id}}", tag) == docker("image", "inspect", "-f", "{{.Id}}", ref)


def test_warm_run_rebuilds_nothing(images: dict[str, str]) -> None:
    ids = {name: docker("image", "inspect", "-f", "{{.Id}}", images[name]) for name in NAMES}
    done = subprocess.run([str(ROOT / "toolchain" / "images.sh")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "built in" not in done.stderr, done.stderr
    assert {name: docker("image", "inspect", "-f", "{{.Id}}", images[name]) for name in NAMES} == ids


def test_python_base_runs_python_311(images: dict[str, str]) -> None:
    out = docker("run", "--rm", "--network", "none", images["PYTHON_BASE"],
                 "python3", "-c", "import platform, ssl; print(platform.python_version(), ssl.OPENSSL_VERSION)")
    version, _, openssl = out.partition(" ")
    assert version.startswith("3.11."), out
    assert openssl.startswith("OpenSSL"), out


def test_python_base_installs_the_app_wheels_offline(images: dict[str, str], tmp_path: Path) -> None:
    requirements = ROOT / "app" / "requirements.txt"
    if not requirements.exists():
        pytest.fail(f"{requirements} is missing: it is the app's wheel set this test installs")
    wheels(requirements, tmp_path / "wheels")
    # As app/Dockerfile does it: --no-index into a target directory, in a container with no network at all.
    check = f"import importlib; [importlib.import_module(m) for m in {json.dumps(APP_IMPORTS)}]; " \
            "import numpy; print(int(numpy.arange(10).sum()))"
    script = ("python3 -m pip install --no-index --find-links /wheels --target /tmp/site --no-cache-dir "
              "--disable-pip-version-check --only-binary=:all: -q -r /req.txt "
              f"&& PYTHONPATH=/tmp/site python3 -c '{check}'")
    out = docker("run", "--rm", "--network", "none", "-v", f"{tmp_path / 'wheels'}:/wheels:ro",
                 "-v", f"{requirements}:/req.txt:ro", images["PYTHON_BASE"], "sh", "-c", script)
    assert out.splitlines()[-1] == "45", out


def test_source_only_pure_python_requirement_becomes_a_wheel(images: dict[str, str], tmp_path: Path) -> None:
    # docopt 0.6.2 is published as a source archive only: wheels.sh builds it, pip in the image takes it.
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("docopt==0.6.2\n")
    wheels(requirements, tmp_path / "wheels")
    assert [p.name for p in (tmp_path / "wheels").glob("*.whl")] == ["docopt-0.6.2-py2.py3-none-any.whl"]
    # Into the image's own Python, as on python:3.11-slim (no externally-managed refusal).
    out = docker("run", "--rm", "--network", "none", "-v", f"{tmp_path / 'wheels'}:/wheels:ro", images["PYTHON_BASE"],
                 "sh", "-c", "pip install -q --no-index --disable-pip-version-check --root-user-action=ignore "
                 "--find-links /wheels docopt && python3 -c 'import docopt; print(docopt.__version__)'")
    assert out.splitlines()[-1] == "0.6.2", out


def test_registry_takes_a_push_and_serves_it_back(images: dict[str, str]) -> None:
    with container(images["REGISTRY"], port=5000) as (cid, url):
        wait_ok(cid, f"{url}/v2/")
        repo = f"modelship-test/tiny-{uuid.uuid4().hex[:8]}"
        ref = f"{url.removeprefix('http://')}/{repo}:1"
        layer = io.BytesIO()
        with tarfile.open(fileobj=layer, mode="w") as tar:
            data = b"hello from modelship\n"
            info = tarfile.TarInfo("hello.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        imported = subprocess.run(["docker", "import", "-", ref], input=layer.getvalue(), capture_output=True,
                                  timeout=60)
        assert imported.returncode == 0, imported.stderr
        try:
            image_id = docker("image", "inspect", "-f", "{{.Id}}", ref)
            docker("push", ref)
            catalog = json.loads(wait_ok(cid, f"{url}/v2/_catalog"))
            assert repo in catalog["repositories"]
            assert json.loads(wait_ok(cid, f"{url}/v2/{repo}/tags/list"))["tags"] == ["1"]
            docker("rmi", ref)
            docker("pull", ref)
            assert docker("image", "inspect", "-f", "{{.Id}}", ref) == image_id
        finally:
            subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, timeout=60)


def test_promtool_runs(images: dict[str, str]) -> None:
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "promtool", images["PROMETHEUS"], "--version")
    assert out.startswith("promtool, version 2."), out


def test_prometheus_answers_ready_and_scrapes_itself(images: dict[str, str]) -> None:
    with container(images["PROMETHEUS"], port=9090) as (cid, url):
        wait_ok(cid, f"{url}/-/ready")
        # The default configuration scrapes Prometheus itself: a target list proves the config file was read.
        deadline = time.monotonic() + 30
        while not (targets := json.loads(wait_ok(cid, f"{url}/api/v1/targets"))["data"]["activeTargets"]):
            assert time.monotonic() < deadline, "Prometheus has no scrape target 30s after it was ready"
            time.sleep(0.5)
        assert [t["labels"]["job"] for t in targets] == ["prometheus"]
        assert b"<html" in wait_ok(cid, f"{url}/graph").lower()


def test_alertmanager_answers_ready(images: dict[str, str]) -> None:
    with container(images["ALERTMANAGER"], port=9093) as (cid, url):
        wait_ok(cid, f"{url}/-/ready")
        status = json.loads(wait_ok(cid, f"{url}/api/v2/status"))
        assert "receivers" in status["config"]["original"]


def test_haproxy_serves_its_prometheus_exporter_and_answers_503_without_servers(images: dict[str, str]) -> None:
    # Debian's build carries the exporter as a service (`haproxy -vv`); the image's default config uses it.
    assert "Built with the Prometheus exporter as a service" in docker("run", "--rm", "--entrypoint", "haproxy",
                                                                     images["HAPROXY"], "-vv")
    with container(images["HAPROXY"], port=8405) as (cid, url):
        assert b"haproxy_process_nbthread" in wait_ok(cid, f"{url}/metrics")
    with container(images["HAPROXY"], port=8080) as (cid, url):
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)
            except urllib.error.HTTPError as err:
                assert err.code == 503
                break
            except OSError:
                assert time.monotonic() < deadline, "the proxy did not answer within 30 s"
                time.sleep(0.5)
