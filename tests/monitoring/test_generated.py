"""Everything `monitoring.render` writes, checked by the tools that will read it: promtool and amtool."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from monitoring import Alerting, Drift, DnsTargets, MonitoringSpec, Slo, StaticTargets, Timing, Traffic, render
from monitoring.bundle import to_yaml
from monitoring.rules import CLASSES, FEATURE_BINS, PREDICTION_BINS, ROWS, alert_rules, recording_rules
from tests.monitoring.tools import run

MODEL_ID = "0123456789abcdef" * 4
ALERTS = {"ModelEndpointDown", "ModelErrorRatioHigh", "ModelLatencyP99High", "ModelNoTraffic",
          "ModelPredictionDrift", "ModelInputDrift", "ModelInfoMismatch"}

SPECS = {
    # A dev stack on Docker: defaults everywhere (a multi-class model).
    "docker-dev": MonitoringSpec(environment="dev", expected_model_id=MODEL_ID, targets=StaticTargets(addresses=["model:8080"])),
    # A regression model on a dev stack: prediction drift over the training predictions' quantile bins.
    "docker-regression": MonitoringSpec(
        environment="dev", expected_model_id=MODEL_ID, task="regression", targets=StaticTargets(addresses=["model:8080"])
    ),
    # A prod stack on Kubernetes serving a binary classifier: pods discovered, traffic expected, a webhook, its own objectives.
    "kubernetes-prod": MonitoringSpec(
        environment="prod",
        expected_model_id=MODEL_ID,
        task="binary",
        targets=DnsTargets(names=["modelship-server-pods.modelship-prod.svc.cluster.local"], port=8080),
        slo=Slo(availability=0.999, latency_p99_seconds=0.1),
        drift=Drift(window="1h", prediction_psi=0.1, input_psi=0.25, min_rows=1000),
        traffic=Traffic(expected=True, min_rps=0.5),
        alerting=Alerting(alertmanagers=["alertmanager.monitoring.svc:9093"], webhook_url="http://pager.internal:8080/hook"),
    ),
}


@pytest.fixture(params=sorted(SPECS))
def written(request, tmp_path) -> tuple[MonitoringSpec, dict[str, Path]]:
    spec = SPECS[request.param]
    return spec, render(spec).write(tmp_path)


def test_prometheus_config_and_its_rules_pass_promtool(written):
    _, files = written
    out = run("promtool", "check", "config", files["prometheus.yml"])
    # The config names the rules file, so promtool checked that too.
    assert "1 rule files found" in out and "SUCCESS" in out


def test_rules_pass_promtool_and_every_alert_is_generated(written):
    spec, files = written
    out = run("promtool", "check", "rules", files["rules.yml"])
    expected = ALERTS if spec.traffic.expected else ALERTS - {"ModelNoTraffic"}
    assert f"SUCCESS: {len(expected) + len(recording_rules(spec))} rules found" in out
    rules = yaml.safe_load(files["rules.yml"].read_text())["groups"][0]["rules"]
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    assert set(alerts) == expected
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["labels"]["environment"] == spec.environment
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, name


def test_thresholds_come_from_the_spec():
    spec = SPECS["kubernetes-prod"]
    exprs = {a.alert: a.expr for a in alert_rules(spec)}
    assert exprs["ModelErrorRatioHigh"].endswith("> 0.001")
    assert exprs["ModelLatencyP99High"].endswith("> 0.1")
    assert "> 0.1 and on(job) job:modelship_input_rows:increase >= 1000" in exprs["ModelPredictionDrift"]
    assert "> 0.25 and on(job) job:modelship_input_rows:increase >= 1000" in exprs["ModelInputDrift"]
    assert exprs["ModelNoTraffic"].endswith("> 0.5")
    assert f'model_id!="{MODEL_ID}"' in exprs["ModelInfoMismatch"]
    raw = [r.expr for r in recording_rules(spec) if r.record in (ROWS, CLASSES.share, FEATURE_BINS.share)]
    assert len(raw) == 3 and all(e.count("[1h]") == 2 or "increase(" in e for e in raw), raw


@pytest.mark.parametrize("name", sorted(SPECS))
def test_prediction_drift_reads_the_series_of_the_task(name):
    """A classifier's PSI comes from its class counters, a regression's from its prediction bins; the
    server of one task never exposes the other's, so rules over them would stay silent for ever."""
    spec = SPECS[name]
    exprs = " ".join(r.expr for r in recording_rules(spec))
    used, unused = (CLASSES, PREDICTION_BINS) if spec.task != "regression" else (PREDICTION_BINS, CLASSES)
    assert used.counter in exprs and used.reference in exprs
    assert unused.counter not in exprs and unused.reference not in exprs
    assert [r.record for r in recording_rules(spec)].count("job:modelship_prediction_psi:window") == 1
    # Input drift is the same whatever the task: per-feature bins, never the removed mean/std series.
    assert FEATURE_BINS.counter in exprs and FEATURE_BINS.reference in exprs
    assert "feature_sum" not in exprs and "feature_mean" not in exprs


def test_alertmanager_config_passes_amtool(written):
    spec, files = written
    out = run("amtool", "check-config", files["alertmanager.yml"])
    assert "SUCCESS" in out
    receiver = yaml.safe_load(files["alertmanager.yml"].read_text())["receivers"][0]
    if spec.alerting.webhook_url:
        assert receiver["webhook_configs"][0]["url"] == spec.alerting.webhook_url
    else:
        assert set(receiver) == {"name"}


def test_kubernetes_targets_are_discovered_per_pod(written):
    spec, files = written
    job = yaml.safe_load(files["prometheus.yml"].read_text())["scrape_configs"][0]
    assert job["job_name"] == spec.job
    if isinstance(spec.targets, DnsTargets):
        sd = job["dns_sd_configs"][0]
        assert sd == {"names": ["modelship-server-pods.modelship-prod.svc.cluster.local"], "type": "A", "port": 8080,
                      "refresh_interval": "15s"}
    else:
        assert job["static_configs"] == [{"targets": ["model:8080"]}]


def test_dashboard_is_provisionable_and_covers_the_brief(written):
    spec, files = written
    board = json.loads(files["dashboard.json"].read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    assert "dashboard" not in board  # provisioning reads the bare model, not the HTTP API's envelope
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for p in panels:
        grid = p["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, p["title"]
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["targets"], p["title"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    predicted = PREDICTION_BINS if spec.task == "regression" else CLASSES
    for needed in ("modelship_requests_total", "job:modelship_inference_errors:ratio", "histogram_quantile(0.99",
                   predicted.share, predicted.reference_share, "job:modelship_prediction_psi:window",
                   "job:modelship_input_psi:max", "topk(5, job_feature:modelship_input_psi:window)",
                   FEATURE_BINS.share, FEATURE_BINS.reference_share, "modelship_model_info"):
        assert needed in exprs, needed
    titles = " ".join(p["title"] for p in panels)
    assert ("Predicted classes" in titles) is (spec.task != "regression"), titles
    assert any(spec.expected_model_id in p["description"] for p in panels)


def test_every_dashboard_expression_parses(written, tmp_path):
    """promtool parses each panel expression as a recording rule: a typo fails here, not in Grafana."""
    _, files = written
    panels = json.loads(files["dashboard.json"].read_text())["panels"]
    rules = [
        {"record": f"dashboard:panel{p['id']}:{t['refId']}", "expr": t["expr"]} for p in panels for t in p["targets"]
    ]
    path = tmp_path / "dashboard-exprs.yml"
    path.write_text(to_yaml({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run("promtool", "check", "rules", path)


@pytest.mark.parametrize(
    "bad",
    [
        {"expected_model_id": "not-a-digest"},
        {"timing": {"window": "5 minutes"}},
        {"slo": {"availability": 1.0}},
        {"targets": {"kind": "static", "addresses": []}},
        {"job": "model-ship"},
    ],
)
def test_bad_specs_are_refused_before_anything_is_generated(bad):
    base = {"environment": "dev", "expected_model_id": MODEL_ID, "targets": {"kind": "static", "addresses": ["m:1"]}}
    with pytest.raises(ValidationError):
        MonitoringSpec.model_validate({**base, **bad})


def test_timing_reaches_the_config():
    spec = SPECS["docker-dev"].model_copy(update={"timing": Timing(scrape_interval="1s", evaluation_interval="1s")})
    config = yaml.safe_load(render(spec).prometheus)
    assert config["global"]["scrape_interval"] == "1s" and config["global"]["external_labels"] == {"environment": "dev"}


def test_command_line_writes_the_files(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SPECS["docker-dev"].model_dump_json())
    done = subprocess.run([sys.executable, "-m", "monitoring", str(spec_file), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["alertmanager.yml", "dashboard.json", "prometheus.yml", "rules.yml"]
    assert render(SPECS["docker-dev"]).rules == (tmp_path / "out" / "rules.yml").read_text()
    spec_file.write_text('{"environment": "dev"}')
    bad = subprocess.run([sys.executable, "-m", "monitoring", str(spec_file), str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert bad.returncode == 2 and "expected_model_id" in bad.stderr
