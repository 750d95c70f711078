"""Read-only calls to a cluster's API server with the credentials of a kubeconfig, at preview time.

The kubernetes provider reads the cluster only once resources are registered; what the program must know
before that (infra/capacity.py) is read here, with the kubeconfig the provider would use: the stack's
`kubernetes.kubeconfig` (a path, or the file's contents), else `$KUBECONFIG`'s first file, else
`~/.kube/config`. Client certificates, bearer tokens and the cluster's CA are supported; exec plugins are not.
"""
from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class KubeApiError(RuntimeError):
    """The cluster could not be read: the message says which kubeconfig, which server and why."""


class _Entry(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class _Cluster(_Entry):
    server: str
    certificate_authority: Optional[str] = Field(None, alias="certificate-authority")
    certificate_authority_data: Optional[str] = Field(None, alias="certificate-authority-data")
    insecure_skip_tls_verify: bool = Field(False, alias="insecure-skip-tls-verify")


class _User(_Entry):
    client_certificate: Optional[str] = Field(None, alias="client-certificate")
    client_certificate_data: Optional[str] = Field(None, alias="client-certificate-data")
    client_key: Optional[str] = Field(None, alias="client-key")
    client_key_data: Optional[str] = Field(None, alias="client-key-data")
    token: Optional[str] = None


class _Named(_Entry):
    name: str


class _NamedCluster(_Named):
    cluster: _Cluster


class _NamedUser(_Named):
    user: _User = _User()


class _Context(_Entry):
    cluster: str
    user: Optional[str] = None


class _NamedContext(_Named):
    context: _Context


class Kubeconfig(_Entry):
    clusters: list[_NamedCluster]
    users: list[_NamedUser] = []
    contexts: list[_NamedContext]
    current_context: str = Field(alias="current-context")


def kubeconfig_source(configured: Optional[str]) -> tuple[str, str]:
    """(where it came from, its text): the provider's order of precedence."""
    if configured and "\n" in configured:
        return "modelship:kubernetes.kubeconfig", configured
    candidates = [configured] if configured else []
    candidates += [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p][:1]
    candidates.append(str(Path.home() / ".kube" / "config"))
    path = Path(candidates[0]).expanduser()
    try:
        return str(path), path.read_text()
    except OSError as err:
        raise KubeApiError(
            f"no kubeconfig at {path} ({err.strerror}): set modelship:kubernetes.kubeconfig or KUBECONFIG "
            "(for the local cluster: `export KUBECONFIG=$(make -s cluster)`)"
        ) from None


class KubeApi:
    """GETs against the current context's API server."""

    def __init__(self, configured: Optional[str]) -> None:
        self.source, text = kubeconfig_source(configured)
        try:
            config = Kubeconfig.model_validate(yaml.safe_load(text))
            context = next(c.context for c in config.contexts if c.name == config.current_context)
            cluster = next(c.cluster for c in config.clusters if c.name == context.cluster)
            user = next((u.user for u in config.users if u.name == context.user), _User())
        except (ValidationError, StopIteration, yaml.YAMLError) as err:
            raise KubeApiError(f"kubeconfig {self.source} is not usable: {err}") from None
        self.server = cluster.server.rstrip("/")
        self._token = user.token
        self._ssl = self._context(cluster, user)

    @staticmethod
    def _context(cluster: _Cluster, user: _User) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if cluster.insecure_skip_tls_verify:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        elif cluster.certificate_authority_data:
            context.load_verify_locations(cadata=base64.b64decode(cluster.certificate_authority_data).decode())
        elif cluster.certificate_authority:
            context.load_verify_locations(cafile=cluster.certificate_authority)
        if user.client_certificate_data and user.client_key_data:
            # ssl loads a client certificate from files only; they live as long as this call.
            with tempfile.TemporaryDirectory() as tmp:
                cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
                cert.write_bytes(base64.b64decode(user.client_certificate_data))
                key.write_bytes(base64.b64decode(user.client_key_data))
                context.load_cert_chain(cert, key)
        elif user.client_certificate and user.client_key:
            context.load_cert_chain(user.client_certificate, user.client_key)
        return context

    def get(self, path: str, **query: str) -> dict[str, Any]:
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, context=self._ssl, timeout=20) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise KubeApiError(f"GET {url} (kubeconfig {self.source}) answered {err.code}: {err.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError) as err:
            raise KubeApiError(
                f"could not reach the cluster at {self.server} (kubeconfig {self.source}): {err}; is it running "
                "(for the local cluster: `make cluster`)?"
            ) from None
