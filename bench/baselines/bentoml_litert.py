"""Baseline (b), for bench/serve.py only: BentoML serving the same TFLite file with the same LiteRT runtime.

`MODEL_TFLITE=... bentoml serve bentoml_litert:Digits --port PORT` in BentoML's own virtualenv.
Same request body as TF Serving's row format, on BentoML's default JSON route.
"""
import os
import threading

import bentoml
import numpy as np
from ai_edge_litert.interpreter import Interpreter


@bentoml.service(workers=1)
class Digits:
    def __init__(self) -> None:
        self.interpreter = Interpreter(model_path=os.environ["MODEL_TFLITE"])
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.batch = 1
        self.lock = threading.Lock()  # sync APIs run in a thread pool; an interpreter is not thread-safe

    @bentoml.api
    def predict(self, instances: list[list[float]]) -> dict:
        rows = np.asarray(instances, dtype=np.float32)
        with self.lock:
            if rows.shape[0] != self.batch:
                self.interpreter.resize_tensor_input(self.input, rows.shape)
                self.interpreter.allocate_tensors()
                self.batch = rows.shape[0]
            self.interpreter.set_tensor(self.input, rows)
            self.interpreter.invoke()
            probabilities = self.interpreter.get_tensor(self.output)
        return {"predictions": probabilities.tolist()}
