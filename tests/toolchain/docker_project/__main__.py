"""Throwaway program for test_pulumi_docker.py: the pulumi-docker resources the Docker target uses, on a local image."""
import pulumi
import pulumi_docker as docker

config = pulumi.Config()
image_name = config.require("image")
label = docker.ContainerLabelArgs(label="ai.modelship.test", value=config.require("label"))

network = docker.Network("probe", labels=[docker.NetworkLabelArgs(label=label.label, value=label.value)])
# Already in the Engine's store: nothing is pulled, and destroy leaves it there.
image = docker.RemoteImage("probe", name=image_name, keep_locally=True)
container = docker.Container(
    "probe",
    image=image.image_id,
    command=["python", "-c", "import time; time.sleep(100000)"],
    networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["probe"])],
    labels=[label],
    healthcheck=docker.ContainerHealthcheckArgs(tests=["CMD", "true"], interval="1s", timeout="2s", retries=3),
    wait=True,
    wait_timeout=60,
)

pulumi.export("network", network.name)
pulumi.export("container", container.name)
pulumi.export("image_id", image.image_id)
