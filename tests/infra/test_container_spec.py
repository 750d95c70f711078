"""The one container spec, and its translation into docker SDK arguments: what `docker_engine.Container`
takes (its registration is checked in test_stacks) and what tests hand to `containers.run`."""
from infra.config import WorkloadConfig
from infra.container import container_spec, cpus, create_kwargs, docker_run_kwargs, memory_bytes
from infra.docker_engine import ContainerProps


def test_quantities_translate_from_kubernetes_units():
    assert memory_bytes("512Mi") == 512 * 2**20 and memory_bytes("1Gi") == 2**30 and memory_bytes("1000") == 1000
    assert cpus("500m") == 0.5 and cpus("2") == 2.0


def test_spec_runs_non_root_read_only_without_capabilities():
    spec = container_spec("img@sha256:" + "0" * 64, WorkloadConfig(cpu="500m", memory="256Mi"), {"a": "b"}, "tok")
    kwargs = docker_run_kwargs(spec)
    assert kwargs["user"] == "10001:10001" and kwargs["read_only"] is True
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["mem_limit"] == 256 * 2**20 and kwargs["nano_cpus"] == 500_000_000
    assert kwargs["ports"] == {"8080/tcp": ("127.0.0.1", 8080)}
    assert kwargs["environment"] == {"PORT": "8080", "HOST": "0.0.0.0", "MODEL_DIR": "/model", "AUTH_TOKEN": "tok"}
    assert kwargs["healthcheck"]["test"][:2] == ["CMD", "python"] and "/v2/health/ready" in kwargs["healthcheck"]["test"][-1]
    assert kwargs["restart_policy"] == {"Name": "unless-stopped"} and "/tmp" in kwargs["tmpfs"]


def test_unset_host_port_lets_docker_choose():
    spec = container_spec("img", WorkloadConfig(host_port=None), {})
    assert docker_run_kwargs(spec)["ports"] == {"8080/tcp": ("127.0.0.1", None)}
    assert "AUTH_TOKEN" not in spec.env


def test_spec_is_a_valid_input_of_the_container_resource():
    spec = container_spec("img@sha256:" + "0" * 64, WorkloadConfig(), {"a": "b"}, "tok")
    props = ContainerProps.model_validate({**create_kwargs(spec), "name_prefix": "server-", "name": "server-1"})
    kwargs = props.create_kwargs(client=None)
    assert kwargs == {**create_kwargs(spec), "name": "server-1"}
    assert docker_run_kwargs(spec) == {**create_kwargs(spec), "detach": True}
