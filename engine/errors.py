"""Failures a job reports to the user as one clear sentence instead of a traceback."""

from __future__ import annotations

import errno


class JobFailed(Exception):
    """A job cannot go on; the message says why and, where possible, what to do."""


class JobCancelled(Exception):
    """A job stopped because the user (or an engine shutdown) asked it to."""


def is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    text = str(exc)
    return name == "OutOfMemoryError" or "CUDA out of memory" in text or ("out of memory" in text.lower() and (
        "cuda" in text.lower() or "hip" in text.lower()))


def is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "no space left on device" in text or "database or disk is full" in text


def describe(exc: BaseException) -> str:
    """One sentence for an exception raised by a job."""
    if isinstance(exc, (JobFailed, JobCancelled)):
        return str(exc)
    if is_oom(exc):
        return "CUDA ran out of memory; try a lower memory mode, a smaller resolution or batch size"
    if is_disk_full(exc):
        where = f" writing {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
        return f"the disk is full{where}; free some space and retry (nothing half-written was kept)"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, FileNotFoundError):
        return f"file not found: {exc.filename or exc}"
    return f"internal error: {type(exc).__name__}: {exc} (details in .zchar/engine.log)"
