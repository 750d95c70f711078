"""The reverse proxy's generated configuration, checked by the HAProxy that runs it (`haproxy -c` in the image
toolchain/images.sh builds; a missing image fails, naming the fix)."""
from __future__ import annotations

import subprocess

import pytest

from infra.config import WorkloadConfig
from infra import READY_PATH
from infra.container import MODEL_ALIAS
from infra.proxy import SLOTS, haproxy_config, service_proxy_config

IMAGE = WorkloadConfig().proxy_image


def check(config: str) -> subprocess.CompletedProcess:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        pytest.fail(f"{IMAGE} is not in the Docker Engine's store: run toolchain/images.sh (make bootstrap)", pytrace=False)
    return subprocess.run(["docker", "run", "--rm", "-i", "--entrypoint", "sh", IMAGE, "-c",
                           "cat > /tmp/haproxy.cfg && haproxy -c -f /tmp/haproxy.cfg"],
                          input=config, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("config", [haproxy_config(MODEL_ALIAS, 8080, READY_PATH), service_proxy_config("10.96.0.7", 8080)],
                         ids=["docker", "kubernetes"])
def test_haproxy_accepts_the_configuration_without_warnings(config):
    done = check(config)
    assert done.returncode == 0 and "Configuration file is valid" in done.stdout, done.stderr
    assert "WARNING" not in done.stderr and "ALERT" not in done.stderr, done.stderr


def test_a_broken_configuration_is_refused():
    # The check above could fail: a configuration HAProxy cannot parse is named as such.
    done = check(haproxy_config(MODEL_ALIAS, 8080, READY_PATH).replace("retry-on", "retry-onn"))
    assert done.returncode != 0 and "retry-onn" in done.stderr


def test_the_servers_are_found_by_alias_checked_on_readiness_and_retried_elsewhere():
    config = haproxy_config(MODEL_ALIAS, 9000, READY_PATH)
    assert f"server-template model 1-{SLOTS} {MODEL_ALIAS}:9000" in config
    assert f"option httpchk GET {READY_PATH}" in config and "http-check expect status 200" in config
    assert "retry-on conn-failure empty-response" in config and "option redispatch 1" in config
    assert "nameserver docker 127.0.0.11:53" in config


def test_on_kubernetes_every_request_goes_to_the_service_and_a_refused_one_is_sent_again():
    config = service_proxy_config("10.96.0.7", 9000)
    assert "server service 10.96.0.7:9000" in config and "option http-server-close" in config
    assert "retry-on conn-failure empty-response junk-response" in config and "timeout connect 1s" in config
    # kube-proxy decides which pod is ready: the proxy checks none itself.
    assert "check" not in config.split("backend servers", 1)[1]
