"""Server settings: environment variables (docs/contracts.md) with command-line overrides."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, Field, ValidationError, field_validator

ENV = {
    "model_dir": "MODEL_DIR",
    "model_name": "MODEL_NAME",
    "host": "HOST",
    "port": "PORT",
    "workers": "WORKERS",
    "auth_token": "AUTH_TOKEN",
    "max_batch": "MAX_BATCH",
    "max_body_bytes": "MAX_BODY_BYTES",
    "body_timeout_seconds": "BODY_TIMEOUT_SECONDS",
    "header_timeout_seconds": "HEADER_TIMEOUT_SECONDS",
    "keep_alive_seconds": "KEEP_ALIVE_SECONDS",
}


class Settings(BaseModel, frozen=True):
    model_dir: Path = Path("/model")
    model_name: str = Field("model", pattern=r"^[A-Za-z0-9._-]+$")
    host: str = "0.0.0.0"
    port: int = Field(8080, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    auth_token: Optional[str] = None
    max_batch: int = Field(256, ge=1)
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # A client must not hold a connection open for free: the whole body (4 MiB at 1 Mbit/s takes ~34 s),
    # the request line and headers, and the idle time between two requests are each bounded.
    body_timeout_seconds: float = Field(60.0, gt=0)
    header_timeout_seconds: float = Field(10.0, gt=0)
    keep_alive_seconds: float = Field(5.0, gt=0)

    @field_validator("auth_token")
    @classmethod
    def _blank_is_none(cls, token: Optional[str]) -> Optional[str]:
        return token or None

    @classmethod
    def load(cls, environ: dict[str, str] = os.environ, **overrides: object) -> "Settings":
        """Environment first, then non-None overrides; raises SystemExit with every bad value named."""
        values: dict[str, object] = {field: environ[var] for field, var in ENV.items() if var in environ}
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as e:
            problems = "; ".join(
                f"{ENV.get(str(err['loc'][0]), err['loc'][0])}={err.get('input')!r}: {err['msg']}" for err in e.errors()
            )
            raise SystemExit(f"modelship server: bad setting: {problems}") from None

    def to_environ(self) -> dict[str, str]:
        """The same settings as environment variables, for worker processes that re-read them."""
        return {ENV[k]: str(v) for k, v in self.model_dump().items() if v is not None}
