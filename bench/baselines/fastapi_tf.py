"""Baseline (a), for bench/serve.py only: the seed's approach, FastAPI + TensorFlow `model.predict` per request.

`python fastapi_tf.py STORE_ENTRY PORT`; same request and response as TF Serving's row format.
"""
import sys

import keras
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

entry, port = sys.argv[1], int(sys.argv[2])
model = keras.Sequential([keras.Input((64,)), keras.layers.TFSMLayer(f"{entry}/saved_model", call_endpoint="serve")])
app = FastAPI()


class PredictRequest(BaseModel):
    instances: list[list[float]]


@app.post("/v1/models/model:predict")
def predict(request: PredictRequest) -> dict:
    return {"predictions": model.predict(np.array(request.instances, dtype=np.float32), verbose=0).tolist()}


@app.get("/ready")
def ready() -> dict:
    return {"ready": True}


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
