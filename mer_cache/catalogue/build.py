"""Shared steps of the loaders: check a root, find the frame folders, build a Clip.

Annotation files give frame *numbers* (``img46.jpg`` is frame 46); a :class:`Clip` holds
0-based *indices* into its natural-sorted frames. :func:`clip_from_folder` does that
conversion once for every loader, keeps the original numbers in ``attrs``, and reports a
missing folder, a folder without frames, an annotated frame without a file and an apex
outside onset..offset as problems instead of raising.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mer_cache.catalogue.clip import Clip, duplicate_frames, duplicates_message, frame_number, list_frames
from mer_cache.catalogue.problems import (
    APEX_RANGE, DUPLICATE_FRAMES, FRAME_NOT_FOUND, MISSING_FOLDER, NO_FRAMES, UNANNOTATED_FOLDER, UNKNOWN_LABEL,
    ProblemLog,
)
from mer_cache.errors import ConfigError, DatasetError

FrameSelection = Literal["all", "onset-offset"]


def require_root(root: Path | str, *, dataset: str) -> Path:
    """``root`` as a Path, after checking it is an existing, non-empty folder.

    Raises
    ------
    DatasetError
        When it does not exist, is a file, or is empty.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(
            f"The {dataset} root {root} does not exist. Pass the folder of your copy of the "
            "dataset with --root."
        )
    if not root.is_dir():
        raise DatasetError(f"The {dataset} root {root} is a file, not a folder. Pass the dataset folder with --root.")
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise DatasetError(
            f"The {dataset} root {root} is empty. Copy or link the dataset there, or pass the "
            "folder that holds it with --root."
        )
    return root


def choose_base(root: Path, candidates: list[Path], subject_dirs: list[str], *, dataset: str,
                expected: str) -> Path:
    """The candidate folder that holds the most of ``subject_dirs`` (ties: the first).

    Raises
    ------
    DatasetError
        When no candidate holds any of them; the message says the expected layout.
    """
    wanted = set(subject_dirs)
    best, best_n = None, 0
    for cand in candidates:
        if not cand.is_dir():
            continue
        n = sum((cand / s).is_dir() for s in wanted)
        if n > best_n:
            best, best_n = cand, n
    if best is None:
        shown = ", ".join(sorted(wanted)[:5]) + (", ..." if len(wanted) > 5 else "")
        raise DatasetError(
            f"No {dataset} frame folders found under {root}: none of the subject folders "
            f"named in the annotation ({shown}) exists in {', '.join(str(c) for c in candidates)}. "
            f"The expected layout is {expected}; point --root at the folder that holds it."
        )
    return best


def check_choice(value: str, choices: tuple[str, ...], *, option: str, dataset: str) -> str:
    """Validate a string option against its allowed values."""
    if value not in choices:
        raise ConfigError(f"{dataset} option {option}={value!r} is not one of {', '.join(choices)}.")
    return value


def norm_label(raw: str) -> str:
    return raw.strip().lower().replace(" ", "_").replace("-", "_")


def check_label(raw: object, known: frozenset[str], *, dataset: str, where: Path, context: str,
                clip_id: str, problems: ProblemLog) -> str | None:
    """The raw label stripped, or None with a fatal problem when it is not a known label."""
    text = "" if raw is None else str(raw).strip()
    if norm_label(text) in known and text:
        return text
    problems.fatal(
        UNKNOWN_LABEL, where,
        f"{context}: label {text or '(empty)'!r} is not a {dataset} label (known: "
        f"{', '.join(sorted(known))}). Fix the label, or use the 'manifest' loader for "
        "relabelled data.",
        clip_id=clip_id)
    return None


def clip_from_folder(
    *,
    dataset: str,
    subject: str,
    clip_name: str,
    folder: Path,
    label: str,
    fps: float,
    problems: ProblemLog,
    context: str,
    onset: int | None = None,
    apex: int | None = None,
    offset: int | None = None,
    frames: FrameSelection = "all",
    attrs: dict | None = None,
) -> Clip | None:
    """Build one clip from its frame folder and annotated frame numbers.

    Parameters
    ----------
    context : str
        Where the clip was declared, for messages (``row 12 of CASME2-coding.xlsx``).
    onset, apex, offset : int or None
        Annotated frame *numbers* (the digits of the file names), not indices.
    frames : {"all", "onset-offset"}
        Keep the whole folder, or only the frames numbered onset..offset.

    Returns
    -------
    Clip or None
        None when the folder is missing or has no usable frames (a fatal problem is logged).
    """
    clip_id = f"{dataset}/{subject}/{clip_name}"
    if not folder.is_dir():
        problems.fatal(MISSING_FOLDER, folder,
                       f"{context} ({clip_id}) has no frame folder; restore it or drop the row.",
                       clip_id=clip_id)
        return None
    paths = list_frames(folder)
    if not paths:
        problems.fatal(NO_FRAMES, folder,
                       f"{context} ({clip_id}): the clip folder holds no image "
                       "(.bmp/.jpg/.png/.tif); copy its frames back or remove the folder.",
                       clip_id=clip_id)
        return None
    if groups := duplicate_frames(paths):
        problems.fatal(DUPLICATE_FRAMES, folder, f"{context} ({clip_id}): "
                       + duplicates_message(folder, groups), clip_id=clip_id)
        return None
    if frames == "onset-offset":
        if onset is None or offset is None:
            problems.warning(FRAME_NOT_FOUND, folder,
                             f"{context} ({clip_id}): onset or offset not annotated, so all "
                             "frames are kept.", clip_id=clip_id)
        else:
            paths = tuple(p for p in paths if (n := frame_number(p)) is not None and onset <= n <= offset)
            if not paths:
                problems.fatal(NO_FRAMES, folder,
                               f"{context} ({clip_id}): no frame numbered {onset}..{offset} "
                               "(onset..offset) in the folder; check the annotation or the files.",
                               clip_id=clip_id)
                return None
    index_of = {}
    for i, p in enumerate(paths):
        index_of.setdefault(frame_number(p), i)
    indices = {}
    for what, number in (("onset", onset), ("apex", apex), ("offset", offset)):
        indices[what] = index_of.get(number) if number is not None else None
        if number is not None and indices[what] is None:
            problems.warning(FRAME_NOT_FOUND, folder,
                             f"{context} ({clip_id}): {what} frame {number} has no file in the "
                             "folder; it is treated as not annotated.", clip_id=clip_id)
    if None not in (onset, apex, offset) and not onset <= apex <= offset:  # type: ignore[operator]
        problems.warning(APEX_RANGE, folder,
                         f"{context} ({clip_id}): apex frame {apex} is outside onset..offset "
                         f"{onset}..{offset}; check the annotation.", clip_id=clip_id)
    extra = {"onset_frame": onset, "apex_frame": apex, "offset_frame": offset, **(attrs or {})}
    return Clip(dataset=dataset, subject=subject, clip_id=clip_id, label=label, frames=paths,
                fps=fps, onset=indices["onset"], apex=indices["apex"], offset=indices["offset"],
                attrs=extra)


def report_unannotated(base: Path, annotated: set[tuple[str, str]], subjects: set[str],
                       problems: ProblemLog, *, dataset: str, xlsx: Path) -> None:
    """Warn about clip folders of annotated subjects that no annotation row names."""
    for subject in sorted(subjects):
        sdir = base / subject
        if not sdir.is_dir():
            continue
        for folder in sorted(p for p in sdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (subject, folder.name) not in annotated:
                problems.warning(UNANNOTATED_FOLDER, folder,
                                 f"clip folder not named in {xlsx.name}; it is left out of the "
                                 f"{dataset} catalogue.")


def as_bool(value: object, *, option: str, dataset: str) -> bool:
    """A boolean option given as bool or text (``true``/``false``, from the CLI)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ConfigError(f"{dataset} option {option}={value!r} is not true or false.")


def as_fps(value: object, *, dataset: str) -> float | None:
    """A frame-rate option given as number or text; None stays None."""
    if value is None:
        return None
    try:
        fps = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        fps = -1.0
    if fps <= 0:
        raise ConfigError(f"{dataset} option fps={value!r} is not a positive number.")
    return fps
