"""Throwaway program for test_pulumi_engine.py: one resource from each provider plugin that toolchain/pulumi.sh builds."""
import pulumi
import pulumi_docker_build as docker_build
import pulumi_kubernetes as kubernetes

config = pulumi.Config()
tag = config.require("tag")

# Built by the Docker Engine's own BuildKit through the docker-buildx plugin (exec mode, "default" builder):
# the offline way, see docs/toolchain.md.
image = docker_build.Image(
    "probe",
    context=docker_build.BuildContextArgs(location=config.require("context")),
    exec_=True,
    builder=docker_build.BuilderConfigArgs(name="default"),
    push=False,
    load=True,
    tags=[tag],
)

# The Kubernetes provider renders manifests to a directory instead of talking to a cluster.
renderer = kubernetes.Provider("render", render_yaml_to_directory=config.require("manifests"))
kubernetes.core.v1.ConfigMap(
    "probe",
    metadata={"name": "probe"},
    data={"image": tag},
    opts=pulumi.ResourceOptions(provider=renderer),
)

pulumi.export("ref", image.ref)
