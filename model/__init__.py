"""modelship's model: reproducible training, evaluated artifacts and a content-addressed store.

Public API (none of it imports TensorFlow unless a model has to be trained):
- `gated_entry(config, overrides, thresholds, store_dir) -> (StoreEntry, GateResult)`: the preview-time call.
- `trained_entry(TrainConfig, Store) -> StoreEntry`: train-or-reuse without a gate.
- `model.gate.evaluate(model_id, metrics, thresholds) -> GateResult`: judge recorded metrics (promotion).
Problems with the user's own code, data or artifact raise `UserCodeError` (a `TrainConfigError`) naming file:line.
"""
from model.pipeline import identify, trained_entry
from model.config import TrainConfig, TrainConfigError
from model.data import DataError
from model.gate import GateResult, Thresholds
from model.search import gated_entry
from model.store import Store, StoreEntry
from model.user import UserCodeError

__all__ = ["DataError", "GateResult", "Store", "StoreEntry", "Thresholds", "TrainConfig", "TrainConfigError",
           "UserCodeError", "gated_entry", "identify", "trained_entry"]
