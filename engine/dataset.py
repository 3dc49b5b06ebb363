"""Dataset checks. (The full health report — blur, exposure, faces, duplicates — belongs to the dataset issue.)"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.project import Project, Settings, list_images

MIN_IMAGES, GOOD_IMAGES, PRO_IMAGES = 5, 15, 30


@dataclass
class DatasetReport:
    images: int = 0
    excluded: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    verdict: str = ""


def verdict(count: int) -> tuple[str, str]:
    """(level, sentence) of the seed guide's ranges: 5 minimum, 15–20 recommended, 30+ high quality."""
    if count < MIN_IMAGES:
        return "error", f"{count} images: too few to train (at least {MIN_IMAGES}; 15–20 recommended)"
    if count < GOOD_IMAGES:
        return "warning", f"{count} images: enough to train; 15–20 recommended for a consistent character"
    if count < PRO_IMAGES:
        return "ok", f"{count} images: good (15–20 recommended; 30+ for high quality)"
    return "ok", f"{count} images: high quality range (30+)"


def check_dataset(project: Project, settings: Settings) -> DatasetReport:
    report = DatasetReport()
    excluded = set(settings.excluded)
    for img in list_images(project.dataset_dir):
        if img.name in excluded:
            report.excluded += 1
            continue
        report.images += 1
        cap = img.with_suffix(".txt")
        if not cap.is_file():
            report.warnings.append(f"{img.name}: no caption (.txt); the trigger word alone will be used")
        elif settings.trigger not in cap.read_text("utf-8", errors="replace"):
            report.warnings.append(f"{img.name}: caption without the trigger word {settings.trigger!r}")
    level, report.verdict = verdict(report.images)
    if level == "error":
        report.errors.append(report.verdict)
    return report


def format_report(report: DatasetReport) -> str:
    lines = [f"dataset: {report.verdict}" + (f" ({report.excluded} excluded)" if report.excluded else "")]
    lines += [f"warning: {w}" for w in report.warnings]
    lines += [f"error: {e}" for e in report.errors]
    lines.append("result: " + ("errors — training would fail" if report.errors else "ok"))
    return "\n".join(lines)
