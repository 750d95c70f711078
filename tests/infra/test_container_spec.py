"""The one container spec, and its two translations: `docker.Container` arguments (their registration is checked
in test_stacks) and what tests hand to the docker SDK's `containers.run`."""
from infra.config import WorkloadConfig
from infra.container import container_args, container_spec, cpus, docker_run_kwargs, healthcheck_args, memory_bytes


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


def test_spec_translates_into_container_arguments():
    spec = container_spec("sha256:" + "0" * 64, WorkloadConfig(cpu="500m", memory="256Mi"), {"a": "b"}, "tok")
    args = container_args(spec)
    assert args["memory"] == args["memory_swap"] == 256 and args["cpus"] == "0.5"
    assert args["user"] == "10001:10001" and args["read_only"] is True and "/tmp" in args["tmpfs"]
    assert args["capabilities"].drops == ["ALL"] and args["security_opts"] == ["no-new-privileges"]
    # Reached over the stack's network through the proxy, never on a host port.
    assert "ports" not in args
    assert healthcheck_args(spec).tests == docker_run_kwargs(spec)["healthcheck"]["test"]
    assert healthcheck_args(spec).interval == "5s"
