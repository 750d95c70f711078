"""The one error both protocols speak: TF Serving and Open Inference V2 both answer `{"error": "..."}`."""
from __future__ import annotations


class ProtocolError(Exception):
    """A request the server refuses; `status` is the HTTP status, `message` names the problem for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
