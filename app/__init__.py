"""modelship's model server: one store entry's TFLite model behind TF Serving REST and Open Inference V2."""
__version__ = "0.1.0"
