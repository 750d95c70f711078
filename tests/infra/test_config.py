"""The stack config: the Pulumi.yaml schema mirrors the pydantic tree, and bad config stops everything."""
import pytest
import yaml

from infra import config
from tests.infra.harness import ROOT, Run, run_program, stack_file


def project_defaults() -> dict:
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return {key.split(":", 1)[1]: spec["default"] for key, spec in declared.items()}


def test_pulumi_yaml_declares_every_section_with_the_models_defaults():
    model_defaults = config.StackConfig().model_dump(by_alias=True, mode="json", exclude_none=True)
    assert project_defaults() == model_defaults


def test_dev_stack_file_is_valid_as_committed():
    cfg = config.parse({**project_defaults(), **stack_file("dev")}, "dev")
    assert cfg.target == "docker" and cfg.image.build and cfg.registry.kind == "local"


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_promoted_stacks_ask_for_what_only_promotion_and_the_operator_provide(stack):
    with pytest.raises(config.StackConfigError) as err:
        config.parse({**project_defaults(), **stack_file(stack)}, stack)
    bad = sorted(line.split(":")[1] for line in str(err.value).splitlines() if line.startswith("  - "))
    # Nothing else is wrong with the committed files: just the promoted image and the registry secret.
    assert bad == ["promotion.image", "registry.password"]


def test_prod_refuses_a_tag_that_is_not_digest_pinned():
    raw = {**stack_file("prod"), "promotion": {"image": "localhost:5001/modelship/server:latest", "modelId": "a" * 64,
                                               "metrics": {"accuracy": 0.99}, "requireDigest": True},
           "registry": {**stack_file("prod")["registry"], "password": "pw"}}
    with pytest.raises(config.StackConfigError, match=r"promotion.image: must be pinned by digest"):
        config.parse(raw, "prod", frozenset({"registry"}))


def test_one_message_names_every_bad_key_and_why():
    raw = {
        "target": "nomad",
        "gate": {"onFail": "ignore", "thresholds": {"accuracy": "high"}},
        "workload": {"memory": "lots", "replicas": 0},
        "colour": "blue",
    }
    with pytest.raises(config.StackConfigError) as err:
        config.parse(raw, "dev")
    message = str(err.value)
    for key in ("modelship:target", "modelship:gate.onFail", "modelship:gate.thresholds.accuracy",
                "modelship:workload.memory", "modelship:workload.replicas", "modelship:colour"):
        assert f"  - {key}: " in message, message
    assert "6 invalid" in message and "Pulumi.dev.yaml" in message


def test_credentials_must_be_stored_encrypted():
    raw = {"registry": {"kind": "external", "server": "localhost:5001", "username": "u", "password": "p"}}
    with pytest.raises(config.StackConfigError, match=r"registry.password: must be stored encrypted"):
        config.parse(raw, "dev")
    assert config.parse(raw, "dev", frozenset({"registry"})).registry.password.get_secret_value() == "p"


def test_invalid_config_registers_nothing():
    run = Run()
    with pytest.raises(config.StackConfigError) as err:
        run_program("dev", {"workload": {"port": 0}, "kubernetes": {"hpa": {"minReplicas": 3, "maxReplicas": 2}}}, run=run)
    assert "modelship:workload.port" in str(err.value)
    assert run.resources == []


def test_search_off_trains_only_the_config_itself():
    on = config.parse({"model": {"overrides": {"epochs": 1}}}, "dev")
    off = config.parse({"model": {"overrides": {"epochs": 1}, "search": False}}, "dev")
    assert on.model.training_overrides() == {"epochs": 1}
    assert off.model.training_overrides() == {"epochs": 1, "search": []}


def test_input_drift_is_judged_by_input_psi_and_the_removed_mean_shift_key_is_refused():
    assert config.parse({"monitoring": {"drift": {"inputPsi": 0.1}}}, "dev").monitoring.drift.input_psi == 0.1
    with pytest.raises(config.StackConfigError) as err:
        config.parse({"monitoring": {"drift": {"featureMeanZ": 3.0, "inputPsi": 0}}}, "dev")
    message = str(err.value)
    assert "  - modelship:monitoring.drift.featureMeanZ: unknown key" in message, message
    assert "  - modelship:monitoring.drift.inputPsi: Input should be greater than 0" in message, message
