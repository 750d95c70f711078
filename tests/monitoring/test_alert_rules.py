"""`promtool test rules` for each generated alert: it fires on series that should fire it (and not before
its `for` has elapsed), and stays silent on series that should not."""
from __future__ import annotations

import pytest

from monitoring import render
from monitoring.bundle import to_yaml
from monitoring.rules import alert_rules
from tests.monitoring.alert_scenarios import CASES, SPEC, promtool_tests, rule
from tests.monitoring.tools import run


def test_every_generated_alert_has_cases():
    assert {r.alert for r in alert_rules(SPEC)} == set(CASES)


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_and_stays_silent(alert, tmp_path):
    (tmp_path / "rules.yml").write_text(render(SPEC).rules)
    cases = CASES[alert](SPEC)
    assert any(c.fires for c in cases) and any(not c.fires for c in cases)
    path = tmp_path / f"{alert}.test.yml"
    path.write_text(to_yaml(promtool_tests("rules.yml", rule(SPEC, alert), cases)))
    out = run("promtool", "test", "rules", path, cwd=tmp_path)
    assert "SUCCESS" in out, out
