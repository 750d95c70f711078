"""Input drift counters are right for any real input (issue 14.3): negative, mixed-sign and huge values only ever
add to a bin, and every monitored feature's bins add up to the rows seen."""
from __future__ import annotations

import numpy as np

from app_metrics import feature_bins, scrape, series
from app_server import Server


def bins(server: Server) -> dict[tuple[str, str], float]:
    return {(dict(k)["feature"], dict(k)["bin"]): v for k, v in series(scrape(server), "modelship_input_feature_bin_total").items()}


def test_counters_never_decrease_for_any_sign(entry, digits):
    rng = np.random.default_rng(0)
    batches = [
        digits[:4],
        np.full((1, 64), -1e6, dtype=np.float32),  # the value: took a feature sum from 714 to -999,285
        rng.normal(0.0, 50.0, size=(16, 64)).astype(np.float32),  # mixed signs
        -digits[4:12],
        np.full((2, 64), 3.0e38, dtype=np.float32),
        np.full((2, 64), -3.0e38, dtype=np.float32),
    ]
    running = Server(entry)
    try:
        previous = bins(running)
        assert set(previous.values()) == {0.0}
        for i, batch in enumerate(batches):
            assert running.client.post("/v1/models/model:predict", json={"instances": batch.tolist()}).status_code == 200
            now = bins(running)
            shrunk = {k: (previous[k], v) for k, v in now.items() if v < previous[k]}
            assert not shrunk, f"batch {i}: counters went down {shrunk}"
            previous = now
        sent = np.concatenate(batches)
        assert previous == feature_bins(entry, sent)
        per_feature: dict[str, float] = {}
        for (feature, _), value in previous.items():
            per_feature[feature] = per_feature.get(feature, 0) + value
        assert set(per_feature.values()) == {len(sent)}
        # The extreme values land in the outer bins, as searchsorted puts them.
        lowest = {k: v for k, v in previous.items() if k[1] == "0"}
        assert all(v >= 1 + 8 + 2 for v in lowest.values()), lowest
    finally:
        running.stop()
