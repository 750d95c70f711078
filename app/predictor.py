"""The TFLite model behind LiteRT: one interpreter per thread, since an interpreter is not thread-safe."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class _Slot:
    """One thread's interpreter and the batch size its tensors are allocated for."""

    def __init__(self, model_path: str):
        self.interpreter = Interpreter(model_path=model_path, num_threads=1)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        self.batch = int(self.input["shape"][0])

    def run(self, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], rows.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.batch = rows.shape[0]
        self.interpreter.set_tensor(self.input["index"], rows)
        self.interpreter.invoke()
        # get_tensor copies: the result outlives the next invoke on this thread.
        return self.interpreter.get_tensor(self.output["index"])


class Predictor:
    """`predict(rows)` maps float32 `[batch, n_features]` to class probabilities `[batch, n_classes]`."""

    def __init__(self, model_path: Path):
        self._model_path = str(model_path)
        self._local = threading.local()
        slot = self._slot()
        signature = slot.interpreter.get_signature_list().get("serving_default", {})
        # Signature names are the Keras names ("features"); tensor names carry converter noise.
        self.input_name: str = (signature.get("inputs") or [slot.input["name"]])[0]
        self.output_name: str = (signature.get("outputs") or [slot.output["name"]])[0]
        self.n_features = int(slot.input["shape_signature"][-1])
        self.n_classes = int(slot.output["shape_signature"][-1])
        if slot.input["dtype"] is not np.float32:
            raise ValueError(f"{model_path}: input dtype {slot.input['dtype'].__name__}, the server feeds float32 raw features")

    def _slot(self) -> _Slot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot(self._model_path)
        return slot

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self._slot().run(rows)
