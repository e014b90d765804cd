"""``datasets check``: every problem of a dataset copy in one report.

Runs a loader without stopping at the first problem, optionally opens every image
(``deep``), and counts clips per subject and label so a user can compare with the
published numbers (REFERENCE.md section 5) before spending hours on extraction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import LAYOUT, UNREADABLE, Problem
from mer_cache.catalogue.registry import get_loader, scan_dataset
from mer_cache.errors import DatasetError, LabelError, os_error_message

Progress = Callable[[int, int], None]


@dataclass
class CheckReport:
    """What :func:`check_dataset` found.

    Attributes
    ----------
    dataset, root : str, Path
        What was checked.
    clips : list of Clip
        The clips the loader could build.
    problems : list of Problem
        Every problem, fatal first.
    deep : bool
        Whether every image was opened.
    """

    dataset: str
    root: Path
    clips: list[Clip]
    problems: list[Problem] = field(default_factory=list)
    deep: bool = False

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "fatal"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def notes(self) -> list[Problem]:
        """Information entries (which annotation file was read)."""
        return [p for p in self.problems if p.severity == "info"]

    @property
    def ok(self) -> bool:
        """True when nothing is fatal (warnings allowed)."""
        return not self.fatal

    @property
    def labels(self) -> list[str]:
        return sorted({c.label for c in self.clips})

    def counts(self) -> dict[str, Counter]:
        """Subject -> Counter of labels, subjects in natural order."""
        from mer_cache.catalogue.clip import natural_key

        out: dict[str, Counter] = {}
        for c in sorted(self.clips, key=lambda c: natural_key(c.subject)):
            out.setdefault(c.subject, Counter())[c.label] += 1
        return out


def _image_problem(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            img.verify()  # structure and checksums
        with Image.open(path) as img:
            img.load()  # a full decode catches truncated JPEG/BMP data that verify lets through
            if img.mode in ("I", "F"):  # 16-bit "I;16" is scaled to 8 bit; these cannot be
                return (f"a 32-bit {'float' if img.mode == 'F' else 'integer'} image (mode "
                        f"{img.mode}) with no known value range; convert it to 8 or 16 bit")
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files; all mean "unreadable"
        return f"{type(exc).__name__}: {exc}"
    return None


def _deep_check(clips: list[Clip], progress: Progress | None) -> list[Problem]:
    from mer_cache.catalogue.video import count_decodable_frames

    problems: list[Problem] = []
    total = sum(1 if c.video is not None else len(c.frames) for c in clips)
    done = 0
    for clip in clips:
        if clip.video is not None:
            try:
                n = count_decodable_frames(clip.video)
                if n != clip.video_frames:
                    problems.append(Problem("warning", UNREADABLE, clip.video,
                                            f"{clip.clip_id}: the container says {clip.video_frames} "
                                            f"frames but {n} decode.", clip.clip_id))
            except Exception as exc:  # noqa: BLE001 - any decoder failure makes the clip unusable
                problems.append(Problem("fatal", UNREADABLE, clip.video,
                                        f"{clip.clip_id}: the video does not decode ({exc}); "
                                        "replace or re-encode it.", clip.clip_id))
            done += 1
        else:
            for path in clip.frames:
                why = _image_problem(path)
                if why is not None:
                    problems.append(Problem("fatal", UNREADABLE, path,
                                            f"{clip.clip_id}: the image cannot be read ({why}); "
                                            "replace the file or remove it.", clip.clip_id))
                done += 1
        if progress is not None:
            progress(done, total)
    return problems


def check_dataset(
    dataset: str,
    root: Path | str,
    *,
    deep: bool = False,
    progress: Progress | None = None,
    **options,
) -> CheckReport:
    """Check a dataset copy and report every problem.

    Parameters
    ----------
    dataset : str
        Loader name (see :data:`~mer_cache.catalogue.DATASETS`).
    root : Path
        The dataset folder.
    deep : bool
        Also open and decode every image (and video), reporting unreadable ones.
    progress : callable, optional
        ``progress(done, total)`` during the deep check.
    **options
        Loader options, as for :func:`~mer_cache.catalogue.load_catalogue`.

    Returns
    -------
    CheckReport
        Never raises for problems of the data: a root or annotation file the loader cannot
        use at all becomes a single fatal problem. Unknown options still raise ConfigError.
    """
    get_loader(dataset)  # an unknown name raises here, not as a problem of the data
    options.pop("on_missing", None)  # missing clips are reported whatever load would do
    try:
        clips, problems = scan_dataset(dataset, root, **options)
    except (DatasetError, LabelError) as exc:
        return CheckReport(dataset, Path(root), [], [Problem("fatal", LAYOUT, Path(root), str(exc))], deep)
    except OSError as exc:  # an unreadable folder or file met while walking the tree
        return CheckReport(dataset, Path(root), [], [Problem(
            "fatal", UNREADABLE, Path(exc.filename or root),
            os_error_message(exc, doing=f"reading the {dataset} data"))], deep)
    if not clips and not any(p.severity == "fatal" for p in problems):
        problems = problems + [Problem(
            "fatal", LAYOUT, Path(root),
            f"the {dataset} loader found 0 clips in {root}. Check --dataset (frame folders need "
            "'folder', videos 'video') and that --root is the dataset folder.")]
    if deep:
        problems = problems + _deep_check(clips, progress)
    problems = sorted(problems, key=lambda p: ("fatal", "warning", "info").index(p.severity))
    return CheckReport(dataset, Path(root), clips, problems, deep)
