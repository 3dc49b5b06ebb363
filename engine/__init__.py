"""zchar engine: the worker process that owns the GPU (training, generation, telemetry)."""

__version__ = "0.1.0"
