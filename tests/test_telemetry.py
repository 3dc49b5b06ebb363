"""GPU telemetry: no NVML, a stand-in NVML with GPUs and unsupported fields, and the sampler's behaviour."""

from __future__ import annotations

import threading

import pytest

from engine.telemetry import GpuReader, Sampler
from tests.fake_nvml import FakeNvml, NVMLError_LibraryNotFound, h100


def test_real_nvml_without_driver_reads_as_no_gpu() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # pragma: no cover - only on a machine with a driver
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    reading = GpuReader().read()
    assert reading == {"available": False, "reason": "no NVIDIA driver", "gpus": [], "driver": "", "torch": None}


def test_missing_library_and_no_gpus_are_reported_not_raised() -> None:
    assert GpuReader(nvml=FakeNvml(init_error=NVMLError_LibraryNotFound)).read()["reason"] == "no NVIDIA driver"
    empty = GpuReader(nvml=FakeNvml(gpus=[]))
    assert not empty.available
    assert empty.read()["reason"] == "no NVIDIA GPU"


def test_reading_two_gpus_with_the_engines_share() -> None:
    fake = FakeNvml(gpus=[h100(0, pid=77), h100(1, pid=77, procs={5: 1000}, util=3, mem_used=1500)])
    reading = GpuReader(nvml=fake, pid=77).read()
    assert reading["available"] and reading["driver"] == "580.65.06"
    g0, g1 = reading["gpus"]
    assert g0 == {"index": 0, "uuid": "GPU-00000000-aaaa", "name": "NVIDIA H100 80GB HBM3", "mem_used": 61_000,
                  "mem_total": 81_559, "proc_mem": 58_000, "util": 93, "temp": 64, "power": 612.5,
                  "power_limit": 700.0, "sm_clock": 1980}
    assert (g1["proc_mem"], g1["util"], g1["mem_used"]) == (0, 3, 1500)  # the engine holds nothing on GPU 1
    assert reading["torch"] is None  # torch never used CUDA in this process


def test_unsupported_fields_read_as_none() -> None:
    fake = FakeNvml(gpus=[h100()], unsupported={"power", "power_limit", "procs", "sm_clock", "temp"})
    g = GpuReader(nvml=fake).read()["gpus"][0]
    assert (g["power"], g["power_limit"], g["proc_mem"], g["sm_clock"], g["temp"]) == (None,) * 5
    assert g["mem_used"] == 61_000 and g["util"] == 93


def test_sampler_without_gpu_posts_once_and_ends() -> None:
    posted = []
    s = Sampler(posted.append, interval=0.01, nvml=FakeNvml(init_error=NVMLError_LibraryNotFound))
    s.start()
    s.join(5)
    assert not s.is_alive()
    assert [p["reason"] for p in posted] == ["no NVIDIA driver"]


def test_sampler_streams_until_stopped_and_shuts_nvml_down() -> None:
    fake = FakeNvml(gpus=[h100()])
    got_three = threading.Event()
    posted = []

    def post(reading: dict) -> None:
        posted.append(reading)
        if len(posted) >= 3:
            got_three.set()

    s = Sampler(post, interval=0.01, nvml=fake)
    s.start()
    assert got_three.wait(5)
    s.stop()
    s.join(5)
    assert not s.is_alive() and fake.shutdowns == 1
    assert all(p["available"] and p["gpus"][0]["util"] == 93 for p in posted)


def test_sampler_survives_a_failing_reading() -> None:
    fake = FakeNvml(gpus=[h100()])
    posted = []
    calls = {"n": 0}

    def post(reading: dict) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the UI link hiccupped")
        posted.append(reading)

    s = Sampler(post, interval=0.01, nvml=fake)
    s.start()
    for _ in range(500):
        if posted:
            break
        threading.Event().wait(0.01)
    s.stop()
    s.join(5)
    assert posted, "the sampler stopped after one failed reading"
