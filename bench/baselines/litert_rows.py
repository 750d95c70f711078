"""The peers' shared model call, for bench/serve.py's BentoML and KServe rows: one LiteRT interpreter over the
TFLite file, resized to each request's batch, behind a lock (their sync handlers run in thread pools, and an
interpreter is not thread-safe)."""
import threading

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class TfliteRows:
    def __init__(self, path: str) -> None:
        self.interpreter = Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 1
        self.lock = threading.Lock()

    def predict(self, instances: list[list[float]]) -> list:
        rows = np.asarray(instances, dtype=np.float32)
        with self.lock:
            if rows.shape[0] != self.batch:
                self.interpreter.resize_tensor_input(self.input, rows.shape)
                self.interpreter.allocate_tensors()
                self.batch = rows.shape[0]
            self.interpreter.set_tensor(self.input, rows)
            self.interpreter.invoke()
            return self.interpreter.get_tensor(self.output).tolist()
