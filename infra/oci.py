"""An image's labels as its registry holds them, read by digest (the OCI distribution API), nothing pulled.

Promotion binds to this: what a digest carries is decided by its bytes, not by the stack file naming it.
"""
from __future__ import annotations

import re
from typing import Optional

import requests
from pydantic import BaseModel, ConfigDict, Field

# Docker's rule: a registry on the loopback is spoken to over plain HTTP, every other one over TLS.
LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")
ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
TIMEOUT_S = 20


class RegistryUnreadable(Exception):
    """The registry did not give the image's config: the message says what was asked and what came back."""


class _Platform(BaseModel):
    os: str = ""
    architecture: str = ""


class _Descriptor(BaseModel):
    digest: str
    platform: Optional[_Platform] = None


class _Manifest(BaseModel):
    """An image manifest (`config` set) or an index of them (`manifests` set)."""

    config: Optional[_Descriptor] = None
    manifests: list[_Descriptor] = Field(default_factory=list)


class _RunConfig(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    labels: Optional[dict[str, str]] = Field(None, alias="Labels")


class _ImageConfig(BaseModel):
    config: _RunConfig = _RunConfig()


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class _Session:
    """One repository of one registry, with Basic or Bearer-token auth as the registry's challenge asks."""

    def __init__(self, server: str, repository: str, username: Optional[str], password: Optional[str]):
        self.base = f"{'http' if LOOPBACK.match(server) else 'https'}://{server}/v2/{repository}"
        self.repository = repository
        self.credentials = (username or "", password) if password else None
        self.http = requests.Session()

    def get(self, path: str, accept: str = "*/*") -> requests.Response:
        url = f"{self.base}/{path}"
        try:
            answer = self.http.get(url, headers={"Accept": accept}, timeout=TIMEOUT_S)
            if answer.status_code == 401:
                self._authenticate(answer.headers.get("WWW-Authenticate", ""))
                answer = self.http.get(url, headers={"Accept": accept}, timeout=TIMEOUT_S)
        except requests.RequestException as err:
            raise RegistryUnreadable(f"GET {url}: {err}") from None
        if answer.status_code != 200:
            raise RegistryUnreadable(f"GET {url}: HTTP {answer.status_code} {answer.text[:200].strip()}")
        return answer

    def _authenticate(self, header: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic" and self.credentials:
            self.http.auth = self.credentials
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryUnreadable(f"{self.base}: asks for credentials ({header or 'no challenge'}) the stack's registry config lacks")
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.repository}:pull")
        token = self.http.get(params["realm"], params=query, auth=self.credentials, timeout=TIMEOUT_S)
        if token.status_code != 200:
            raise RegistryUnreadable(f"token from {params['realm']}: HTTP {token.status_code} {token.text[:200].strip()}")
        body = token.json()
        self.http.headers["Authorization"] = f"Bearer {body.get('token') or body.get('access_token')}"


def image_labels(ref: str, username: Optional[str] = None, password: Optional[str] = None) -> dict[str, str]:
    """The labels of `ref` (`<server>/<repository>[:tag]@sha256:...`) from its registry's config blob.

    An index (multi-platform, or with build attestations) yields the first runnable image's labels: one build
    labels every platform alike.
    """
    name, _, digest = ref.partition("@")
    if not digest:
        raise RegistryUnreadable(f"{ref!r} names no digest: only a pinned image can be read back")
    server, _, path = name.partition("/")
    repository = path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path
    session = _Session(server, repository, username, password)
    manifest = _Manifest.model_validate_json(session.get(f"manifests/{digest}", ACCEPT).content)
    if manifest.config is None:
        runnable = [m for m in manifest.manifests if m.platform is None or m.platform.os != "unknown"]
        if not runnable:
            raise RegistryUnreadable(f"{ref}: an index with no runnable image")
        manifest = _Manifest.model_validate_json(session.get(f"manifests/{runnable[0].digest}", ACCEPT).content)
        if manifest.config is None:
            raise RegistryUnreadable(f"{ref}: manifest {runnable[0].digest} has no config")
    config = _ImageConfig.model_validate_json(session.get(f"blobs/{manifest.config.digest}").content)
    return config.config.labels or {}
