"""The Pulumi components of modelship and the program's helpers (config, gate, promotion)."""
