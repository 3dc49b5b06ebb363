"""GPU readings through NVML (nvidia-ml-py), sampled in a background thread of the engine.

Every field that a driver does not support reads as None ("n/a" on screen) instead of raising; with no driver or no
GPU the sampler reports that once and stops.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger("zchar.telemetry")
MIB = 1024 * 1024


def _load_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _field(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception:  # NVMLError_NotSupported and friends: this reading is n/a on this GPU
        return None


class GpuReader:
    """One pass over all GPUs per call to `read()`; `nvml` may be a stand-in module in tests."""

    def __init__(self, nvml: ModuleType | None = None, pid: int | None = None):
        self.nvml = nvml if nvml is not None else _load_nvml()
        self.pid = pid or os.getpid()
        self.reason = ""
        self.driver = ""
        self._handles: list[Any] = []
        self._init()

    def _init(self) -> None:
        if self.nvml is None:
            self.reason = "nvidia-ml-py is not installed"
            return
        try:
            self.nvml.nvmlInit()
        except Exception as exc:
            name = type(exc).__name__
            self.reason = ("no NVIDIA driver" if "LibraryNotFound" in name or "DriverNotLoaded" in name
                           else f"NVML unavailable ({name})")
            return
        self.driver = _field(self.nvml.nvmlSystemGetDriverVersion) or ""
        count = _field(self.nvml.nvmlDeviceGetCount) or 0
        self._handles = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        if not self._handles:
            self.reason = "no NVIDIA GPU"

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def _proc_mem(self, handle: Any) -> int | None:
        procs = _field(lambda: self.nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        if procs is None:
            return None
        return sum((p.usedGpuMemory or 0) for p in procs if p.pid == self.pid)

    def read(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self.reason or "no NVIDIA GPU", "gpus": [], "driver": self.driver}
        nv = self.nvml
        gpus = []
        for i, h in enumerate(self._handles):
            mem = _field(lambda h=h: nv.nvmlDeviceGetMemoryInfo(h))
            util = _field(lambda h=h: nv.nvmlDeviceGetUtilizationRates(h))
            power = _field(lambda h=h: nv.nvmlDeviceGetPowerUsage(h))
            limit = _field(lambda h=h: nv.nvmlDeviceGetEnforcedPowerLimit(h))
            name = _field(lambda h=h: nv.nvmlDeviceGetName(h))
            gpus.append({
                "index": i,
                "name": name.decode() if isinstance(name, bytes) else name,
                "mem_used": mem.used // MIB if mem else None,
                "mem_total": mem.total // MIB if mem else None,
                "proc_mem": (pm // MIB) if (pm := self._proc_mem(h)) is not None else None,
                "util": util.gpu if util else None,
                "temp": _field(lambda h=h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
                "power": power / 1000.0 if power is not None else None,
                "power_limit": limit / 1000.0 if limit is not None else None,
                "sm_clock": _field(lambda h=h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
            })
        return {"available": True, "reason": "", "gpus": gpus, "driver": self.driver, "torch": _torch_memory()}


def _torch_memory() -> dict[str, int] | None:
    """The allocator's view (MiB), shown beside the driver's; only when the engine already uses CUDA."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return {"reserved": torch.cuda.memory_reserved() // MIB, "max_reserved": torch.cuda.max_memory_reserved() // MIB,
            "allocated": torch.cuda.memory_allocated() // MIB}


class Sampler(threading.Thread):
    """Calls `post(reading)` about once per `interval` seconds; once only when there is no GPU."""

    def __init__(self, post: Callable[[dict[str, Any]], None], interval: float = 1.0, nvml: ModuleType | None = None):
        super().__init__(name="zchar-telemetry", daemon=True)
        self.post = post
        self.interval = interval
        self.nvml = nvml
        self._stop = threading.Event()

    def run(self) -> None:
        reader = GpuReader(self.nvml)
        if not reader.available:
            log.info("GPU telemetry off: %s", reader.reason)
            self.post(reader.read())
            return
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.post(reader.read())
            except Exception:
                log.exception("telemetry reading failed")
            self._stop.wait(max(0.05, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
