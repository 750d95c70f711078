"""The front door: HAProxy in front of the model servers. On Docker, a container that owns the stack's host port
and spreads requests over the model server containers on the stack's network; on Kubernetes, pods behind the
stack's Service that send every request on to the server pods' Service and retry what a crashed pod refused
(infra/kubernetes_proxy.py makes them; `service_proxy_config` is their configuration).

It finds the servers by their network alias (`model`, Docker's embedded DNS answers one address per container)
and sends a request only to a server whose readiness route answers 200 (its own active health check). So its
configuration never names a container and never changes on a model update: the proxy container is made once and
kept, and a new server container joins the rotation by itself as soon as it is ready. On a model update
(infra/container.py) the new containers are created beside the old ones and the engine deletes the old ones at
the end; a stopping server closes its listener and finishes its in-flight requests (the server's graceful
shutdown), the proxy's check marks it down, and a request that reaches it meanwhile (connection refused, or a
reused idle connection closed under it) is sent again to another server (`retry-on` + `redispatch`).
Why HAProxy, and what was measured: docs/proxy.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_docker as docker

from infra import docker_engine

PROXY_ALIAS = "proxy"
# Inside the proxy container: where clients' requests arrive (published on the stack's host port) and where
# Prometheus scrapes its exporter (on the stack's network only).
PROXY_PORT = 8080
METRICS_PORT = 8405
CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
# Docker's embedded DNS server, inside every container on a user-defined network.
DOCKER_DNS = "127.0.0.11:53"
# Server slots the alias may fill: the old and the new set of a rollout side by side, and a failed one. Fixed, so a
# change of `workload.replicas` never changes the proxy's configuration (which would replace the proxy container,
# the owner of the host port). Empty slots cost nothing: no address, no check.
SLOTS = 2 * 100 + 1


_GLOBAL = """\
# Written by infra/proxy.py.
global
    log stdout format raw local0 warning
    # Reload (SIGUSR2) or stop (SIGUSR1): a worker with connections left is stopped after this.
    hard-stop-after 30s
"""

_DEFAULTS = """\
defaults
    mode http
    # Only requests that failed are logged (as errors; the global level drops the others).
    log global
    option httplog
    option log-separate-errors
    option forwardfor
    timeout connect 1s
    # The server's own limits are 10 s for the headers and 60 s for the body: the proxy's are just above.
    timeout http-request 11s
    timeout client 65s
    timeout server 65s
    timeout http-keep-alive 5s
"""

_FRONTENDS = f"""\
frontend model
    bind :{PROXY_PORT}
    default_backend servers

frontend metrics
    bind :{METRICS_PORT}
    http-request use-service prometheus-exporter if {{ path /metrics }}
"""


def haproxy_config(backend_alias: str, backend_port: int, ready_path: str) -> str:
    """The Docker target's configuration: servers found by `backend_alias` on the network, checked on `ready_path`."""
    return f"""\
{_GLOBAL}
resolvers docker
    nameserver docker {DOCKER_DNS}
    accepted_payload_size 8192
    # A new container is found within about half a second of joining the network.
    timeout resolve 500ms
    timeout retry 500ms
    resolve_retries 2
    hold valid 1s
    hold nx 1s
    hold obsolete 1s

{_DEFAULTS}\
    timeout check 2s
    # A request that found no server (refused: it is stopping) or an empty answer (a reused idle connection that
    # the server closed) is sent again, each time to another server: no client sees it.
    retries 3
    retry-on conn-failure empty-response
    option redispatch 1

{_FRONTENDS}
backend servers
    balance leastconn
    option httpchk GET {ready_path}
    http-check expect status 200
    # pool-purge-delay: idle server connections are closed before the server's own 5 s keep-alive limit does.
    default-server check inter 500ms fall 2 rise 1 resolvers docker resolve-prefer ipv4 init-addr none pool-purge-delay 2s
    server-template model 1-{SLOTS} {backend_alias}:{backend_port}
"""


def service_proxy_config(service_ip: str, service_port: int) -> str:
    """The Kubernetes target's configuration: every request to a Service's virtual IP, where kube-proxy picks a
    ready server pod for each connection, as it would for a client. The pods' readiness, and who serves during a
    rollout, stay kube-proxy's; what the proxy adds is the retry kube-proxy cannot make."""
    return f"""\
{_GLOBAL}
{_DEFAULTS}\
    # A request whose connection was refused (a crashed pod stays in kube-proxy's rules for about a second, longer
    # on a loaded node), or that lost its server before a whole response head came back (none, or a cut one: the
    # client has been sent nothing yet), is sent again, each time after min(timeout connect, 1 s), for up to 5 s:
    # by then kube-proxy sends it to another pod. (HAProxy keeps the request to resend it, up to its 16 kB buffer.)
    retries 5
    retry-on conn-failure empty-response junk-response

{_FRONTENDS}
backend servers
    # A new connection for every request: kube-proxy spreads them over the pods.
    option http-server-close
    server service {service_ip}:{service_port}
"""


@dataclass(frozen=True)
class ReverseProxyArgs:
    image: str
    network_name: pulumi.Input[str]
    # On 127.0.0.1; None lets Docker pick a free one.
    host_port: Optional[int]
    backend_alias: str
    backend_port: int
    ready_path: str
    # Made after these (the first servers): the endpoint answers when `up` returns. Never waits on a rollout:
    # dependencies order creation, they do not replace.
    after: Sequence[pulumi.Resource] = ()


class ReverseProxy(pulumi.ComponentResource):
    """`host_port`: the host port clients call (on 127.0.0.1)."""

    host_port: pulumi.Output[str]

    def __init__(self, name: str, args: ReverseProxyArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("modelship:infra:ReverseProxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = docker_engine.local_image(f"{name}-image", args.image, opts=child)
        config = haproxy_config(args.backend_alias, args.backend_port, args.ready_path)
        self.container = docker_engine.container(
            name,
            image=image.image_id,
            health=docker_engine.healthcheck(["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PROXY_PORT}"], interval_s=2),
            uploads=[docker.ContainerUploadArgs(file=CONFIG_PATH, content=config)],
            ports=[docker.ContainerPortArgs(internal=PROXY_PORT, external=args.host_port, ip="127.0.0.1")],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[PROXY_ALIAS])],
            memory=128,
            memory_swap=128,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges"],
            # haproxy:2.6's stop signal: the workers finish their connections first.
            stop_signal="SIGUSR1",
            # The fixed host port: a changed proxy (a new image) cannot start beside the old one. Model updates
            # never change it.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=list(args.after)),
        )
        self.host_port = self.container.ports.apply(lambda ports: str(ports[0].external))
        self.register_outputs({"host_port": self.host_port})
