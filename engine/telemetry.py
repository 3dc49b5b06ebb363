"""GPU readings through NVML (nvidia-ml-py), sampled in a background thread of the engine.

A reading (the payload of the `gpu` event):

    {available, reason, driver, gpus: [{index, uuid, name, mem_used, mem_total, proc_mem, util, temp, power,
     power_limit, sm_clock}], torch: {uuid, device, reserved, max_reserved, allocated} | None}

Memory is in MiB, power in W, clocks in MHz. Every field a driver does not support reads as None ("n/a" on screen)
instead of raising (nvitop's approach); with no driver or no GPU the sampler says so once and stops.
`proc_mem` is this engine's own share as the driver sees it; `torch` is the allocator's view of the device the
engine trains on, so the two can be compared when explaining an out-of-memory error.
"""

from __future__ import annotations

import logging
import os
import sys
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


def _text(value: Any) -> str | None:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _no_gpu_reason(exc: Exception) -> str:
    name = type(exc).__name__
    if "LibraryNotFound" in name or "DriverNotLoaded" in name:
        return "no NVIDIA driver"
    if "NoPermission" in name:
        return "NVML: no permission to read the GPUs"
    return f"NVML unavailable ({name})"


class GpuReader:
    """One pass over all GPUs per call to `read()`; `nvml` may be a stand-in module in tests."""

    def __init__(self, nvml: ModuleType | None = None, pid: int | None = None):
        self.nvml = nvml if nvml is not None else _load_nvml()
        self.pid = pid or os.getpid()
        self.reason = ""
        self.driver = ""
        self._handles: list[tuple[int, Any]] = []
        self._initialised = False
        self._init()

    def _init(self) -> None:
        if self.nvml is None:
            self.reason = "nvidia-ml-py is not installed"
            return
        try:
            self.nvml.nvmlInit()
        except Exception as exc:
            self.reason = _no_gpu_reason(exc)
            return
        self._initialised = True
        self.driver = _text(_field(self.nvml.nvmlSystemGetDriverVersion)) or ""
        count = _field(self.nvml.nvmlDeviceGetCount) or 0
        for i in range(count):
            handle = _field(lambda i=i: self.nvml.nvmlDeviceGetHandleByIndex(i))
            if handle is not None:  # a lost or inaccessible GPU is left out, the others still read
                self._handles.append((i, handle))
        if not self._handles:
            self.reason = "no NVIDIA GPU"

    @property
    def available(self) -> bool:
        return bool(self._handles)

    def close(self) -> None:
        if self._initialised:
            _field(self.nvml.nvmlShutdown)
            self._initialised = False
            self._handles = []

    def _proc_mem(self, handle: Any) -> int | None:
        procs = _field(lambda: self.nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        if procs is None:
            return None
        return sum((p.usedGpuMemory or 0) for p in procs if p.pid == self.pid) // MIB

    def _gpu(self, index: int, h: Any) -> dict[str, Any]:
        nv = self.nvml
        mem = _field(lambda: nv.nvmlDeviceGetMemoryInfo(h))
        util = _field(lambda: nv.nvmlDeviceGetUtilizationRates(h))
        power = _field(lambda: nv.nvmlDeviceGetPowerUsage(h))
        limit = _field(lambda: nv.nvmlDeviceGetEnforcedPowerLimit(h))
        return {
            "index": index,
            "uuid": _text(_field(lambda: nv.nvmlDeviceGetUUID(h))),
            "name": _text(_field(lambda: nv.nvmlDeviceGetName(h))),
            "mem_used": mem.used // MIB if mem else None,
            "mem_total": mem.total // MIB if mem else None,
            "proc_mem": self._proc_mem(h),
            "util": util.gpu if util else None,
            "temp": _field(lambda: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU)),
            "power": power / 1000.0 if power is not None else None,
            "power_limit": limit / 1000.0 if limit is not None else None,
            "sm_clock": _field(lambda: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM)),
        }

    def read(self) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self.reason or "no NVIDIA GPU", "gpus": [], "driver": self.driver,
                    "torch": None}
        gpus = [self._gpu(i, h) for i, h in self._handles]
        return {"available": True, "reason": "", "gpus": gpus, "driver": self.driver, "torch": torch_memory()}


def torch_memory() -> dict[str, Any] | None:
    """The allocator's view (MiB) of the engine's current CUDA device; None until the engine has used CUDA.

    Never imports torch: a reading while the engine is idle must not pull it in.
    """
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
            return None
        device = torch.cuda.current_device()
        uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
        return {"device": device, "uuid": f"GPU-{uuid}" if uuid is not None else None,
                "reserved": torch.cuda.memory_reserved(device) // MIB,
                "max_reserved": torch.cuda.max_memory_reserved(device) // MIB,
                "allocated": torch.cuda.memory_allocated(device) // MIB}
    except Exception:  # a CUDA error here must not stop the sampler; the driver's view is still shown
        return None


class Sampler(threading.Thread):
    """Calls `post(reading)` about once per `interval` seconds, also while idle; once only when there is no GPU."""

    def __init__(self, post: Callable[[dict[str, Any]], None], interval: float = 1.0, nvml: ModuleType | None = None):
        super().__init__(name="zchar-telemetry", daemon=True)
        self.post = post
        self.interval = interval
        self.nvml = nvml
        self._halt = threading.Event()

    def run(self) -> None:
        reader = GpuReader(self.nvml)
        if not reader.available:
            log.info("GPU telemetry off: %s", reader.reason)
            self.post(reader.read())
            reader.close()
            return
        last_error = ""
        try:
            while not self._halt.is_set():
                started = time.monotonic()
                try:
                    self.post(reader.read())
                    last_error = ""
                except Exception as exc:
                    if str(exc) != last_error:  # log a failing reading once, not every second
                        log.exception("telemetry reading failed")
                        last_error = str(exc)
                self._halt.wait(max(0.05, self.interval - (time.monotonic() - started)))
        finally:
            reader.close()

    def stop(self) -> None:
        self._halt.set()
