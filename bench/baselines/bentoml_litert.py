"""Baseline (b), for bench/serve.py only: BentoML serving the same TFLite file with the same LiteRT runtime.

`MODEL_TFLITE=... bentoml serve bentoml_litert:Digits --port PORT` in BentoML's own virtualenv.
Same request body as TF Serving's row format, on BentoML's default JSON route.
"""
import os

import bentoml

from litert_rows import TfliteRows


@bentoml.service(workers=1)
class Digits:
    def __init__(self) -> None:
        self.model = TfliteRows(os.environ["MODEL_TFLITE"])

    @bentoml.api
    def predict(self, instances: list[list[float]]) -> dict:
        return {"predictions": self.model.predict(instances)}
