"""Baseline (d), for bench/serve.py only: KServe's Python ModelServer serving the same TFLite file with LiteRT.

`python kserve_litert.py MODEL_TFLITE PORT` in KServe's own virtualenv. KServe's V1 protocol is TF Serving's
row format: `POST /v1/models/model:predict` with `{"instances": [...]}`.
"""
import logging
import sys

from kserve import Model, ModelServer

from litert_rows import TfliteRows


class Digits(Model):
    def __init__(self, path: str) -> None:
        super().__init__("model")
        self.model = TfliteRows(path)
        self.ready = True

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return {"predictions": self.model.predict(payload["instances"])}


if __name__ == "__main__":
    path, port = sys.argv[1], int(sys.argv[2])
    server = ModelServer(http_port=port, workers=1, enable_grpc=False, enable_latency_logging=False)
    # Like modelship (access_log=False), no line per request: the access log and KServe's per-request trace
    # (after ModelServer, which configures logging).
    for chatty in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    server.start([Digits(path)])
