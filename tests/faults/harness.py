"""A real engine process that stops dead at a chosen moment, so that a test can SIGKILL it exactly there.

    python -m tests.faults.harness PROJECT MARKER POINT

The fault points are patches made here, in the test harness; the production code has no hooks. POINT is one of

  checkpoint:STEP  the checkpoint of STEP is being written: its first file is whole, the second half on disk
  sample:STEP      validation samples at STEP: the first PNG is written, the second is half in its temp file
  step:N           the N-th training step of this process is under way (loss computed, weights not yet updated)
  png:N            the N-th generated image of this process is half written in its temp file
  png-written:N    the N-th generated image is written, and the engine has not recorded it yet
  crashing-job     adds a job kind `crash` whose job kills the engine (MARKER is unused)

Once there, the harness writes MARKER (naming the point) and sleeps until it is killed; the engine's event loop
keeps serving clients meanwhile, as a real engine busy in a long write would.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _half_written(path: Path, data: bytes, temp: bool) -> None:
    """Put half of `data` on disk where the real writer would have it (its temp file, or the file itself)."""
    target = Path(tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)[1]) if temp \
        else path
    with open(target, "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())


def _stop_here(marker: Path, what: str) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(what)
    os.replace(tmp, marker)
    while True:
        time.sleep(3600)


def install(point: str, marker: Path) -> None:
    kind, _, arg = point.partition(":")
    if kind == "checkpoint":
        from engine import train_checkpoint

        real_write = train_checkpoint._write_synced
        folder_prefix = f".tmp-step-{int(arg):06d}-"
        written: list[Path] = []

        def write_synced(path: Path, data: bytes) -> None:
            if path.parent.name.startswith(folder_prefix):
                if written:
                    _half_written(path, data, temp=False)
                    _stop_here(marker, f"checkpoint {arg}: {written[0].name} written, {path.name} half written")
                written.append(path)
            real_write(path, data)

        train_checkpoint._write_synced = write_synced
    elif kind == "sample":
        from engine import train_sample

        real_atomic = train_sample.atomic_write_bytes

        def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
            if path.name.startswith(f"step{int(arg):06d}-p1-"):
                _half_written(path, data, temp=True)
                _stop_here(marker, f"samples at step {arg}: {path.name} half written")
            real_atomic(path, data, mode)

        train_sample.atomic_write_bytes = atomic_write_bytes
    elif kind == "step":
        from engine import train_step

        real_loss = train_step.flow_loss
        calls = [0]

        def flow_loss(*args: Any, **kwargs: Any) -> Any:
            loss = real_loss(*args, **kwargs)
            calls[0] += 1
            if calls[0] == int(arg):
                _stop_here(marker, f"step {arg} of this process: loss computed, weights not updated")
            return loss

        train_step.flow_loss = flow_loss
    elif kind in ("png", "png-written"):
        from engine import pngmeta

        real_png = pngmeta.atomic_write_bytes
        pngs = [0]

        def png_write(path: Path, data: bytes, mode: int = 0o644) -> None:
            pngs[0] += 1
            if pngs[0] == int(arg) and kind == "png":
                _half_written(path, data, temp=True)
                _stop_here(marker, f"{path.name} half written")
            real_png(path, data, mode)
            if pngs[0] == int(arg):
                _stop_here(marker, f"{path.name} written, not yet recorded")

        pngmeta.atomic_write_bytes = png_write
    elif kind == "crashing-job":
        from engine import jobs

        jobs.KINDS["crash"] = ("tests.faults.harness:kill_the_engine", lambda project, settings, params: ([params], []))
    else:
        raise SystemExit(f"unknown fault point {point!r}")


def kill_the_engine(ctx: Any) -> dict[str, Any]:
    """A job that takes the engine down with it (as a native crash or the kernel's OOM killer would)."""
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def main(argv: list[str]) -> int:
    from engine import server

    project, marker, point = argv
    install(point, Path(marker))
    return server.main([project])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
