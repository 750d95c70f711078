"""`promtool test rules` for each generated alert, for a model of each task: it fires on series that should
fire it (and not before its `for` has elapsed), and stays silent on series that should not."""
from __future__ import annotations

import pytest

from monitoring import render
from monitoring.bundle import to_yaml
from monitoring.rules import alert_rules
from tests.monitoring.alert_scenarios import CASES, SPECS, promtool_tests, rule
from tests.monitoring.tools import run


@pytest.mark.parametrize("task", sorted(SPECS))
def test_every_generated_alert_has_cases(task):
    assert {r.alert for r in alert_rules(SPECS[task])} == set(CASES)


@pytest.mark.parametrize("alert", sorted(CASES))
@pytest.mark.parametrize("task", sorted(SPECS))
def test_alert_fires_and_stays_silent(task, alert, tmp_path):
    spec = SPECS[task]
    (tmp_path / "rules.yml").write_text(render(spec).rules)
    cases = CASES[alert](spec)
    assert any(c.fires for c in cases) and any(not c.fires for c in cases)
    path = tmp_path / f"{alert}.test.yml"
    path.write_text(to_yaml(promtool_tests("rules.yml", rule(spec, alert), cases, spec)))
    out = run("promtool", "test", "rules", path, cwd=tmp_path)
    assert "SUCCESS" in out, out
