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
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{model_path} has {len(inputs)} inputs and {len(outputs)} outputs; the server serves one of each")
        (self.input,), (self.output,) = inputs, outputs
        self.batch = int(self.input["shape"][0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self.batch:
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape, strict=True)
            self.interpreter.allocate_tensors()
            self.batch = batch.shape[0]
        self.interpreter.set_tensor(self.input["index"], batch)
        self.interpreter.invoke()
        # get_tensor copies: the result outlives the next invoke on this thread.
        return self.interpreter.get_tensor(self.output["index"])


class Predictor:
    """`predict(batch)` runs `[batch, *input_shape]` through the model to `[batch, *output_shape]` float32."""

    def __init__(self, model_path: Path):
        self._model_path = str(model_path)
        self._local = threading.local()
        slot = self._slot()
        # What the file itself declares, without the batch dimension, for the entry to check against report.json.
        self.input_shape: list[int] = [int(d) for d in slot.input["shape_signature"][1:]]
        self.input_dtype: str = np.dtype(slot.input["dtype"]).name
        self.output_shape: list[int] = [int(d) for d in slot.output["shape_signature"][1:]]

    def _slot(self) -> _Slot:
        slot = getattr(self._local, "slot", None)
        if slot is None:
            slot = self._local.slot = _Slot(self._model_path)
        return slot

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self._slot().run(batch)
