"""A stand-in for the `pynvml` module: GPUs described as dicts, and any reading can be made unsupported."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

MIB = 1024 * 1024


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):
    pass


class NVMLError_LibraryNotFound(NVMLError):
    pass


class FakeNvml:
    """`FakeNvml(gpus=[{...}], unsupported={"power"}, init_error=NVMLError_LibraryNotFound)`."""

    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1

    def __init__(self, gpus: list[dict[str, Any]] | None = None, unsupported: set[str] | None = None,
                 init_error: type[Exception] | None = None, driver: str = "580.65.06") -> None:
        self.gpus = gpus or []
        self.unsupported = unsupported or set()
        self.init_error = init_error
        self.driver = driver
        self.initialised = False
        self.shutdowns = 0

    def _get(self, handle: int, key: str) -> Any:
        if key in self.unsupported or key not in self.gpus[handle]:
            raise NVMLError_NotSupported(key)
        return self.gpus[handle][key]

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error("fake")
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return self.driver.encode()

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return self._get(h, "name").encode()

    def nvmlDeviceGetUUID(self, h: int) -> str:
        return self._get(h, "uuid")

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        used, total = self._get(h, "mem_used"), self._get(h, "mem_total")
        return SimpleNamespace(used=used * MIB, total=total * MIB, free=(total - used) * MIB)

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * MIB) for pid, mib in self._get(h, "procs").items()]

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._get(h, "util"), memory=0)

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:
        return self._get(h, "temp")

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return int(self._get(h, "power") * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return int(self._get(h, "power_limit") * 1000)

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        return self._get(h, "sm_clock")


def h100(index: int = 0, pid: int = 4242, **over: Any) -> dict[str, Any]:
    gpu = {"name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{index:08x}-aaaa", "mem_used": 61_000, "mem_total": 81_559,
           "procs": {pid: 58_000, 999: 2_000}, "util": 93, "temp": 64, "power": 612.5, "power_limit": 700.0,
           "sm_clock": 1980}
    gpu.update(over)
    return gpu
