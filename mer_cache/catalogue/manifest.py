"""A CSV manifest for any data: one row per clip, ``subject, clip, label, frames_dir``.

Optional columns ``onset, apex, offset`` are 0-based indices into the clip's frames in
natural order (not file-name numbers: a manifest may point at frames named anyhow), and
``fps`` the clip's frame rate. ``frames_dir`` is a frame folder or a video file, relative to
the CSV's folder unless absolute.
"""

from __future__ import annotations

import csv
from pathlib import Path

from mer_cache.catalogue.build import as_fps, require_root
from mer_cache.catalogue.clip import VIDEO_SUFFIXES, Clip, duplicate_frames, duplicates_message, list_frames
from mer_cache.catalogue.problems import (
    APEX_RANGE, DUPLICATE_FRAMES, EMPTY_CELL, FRAME_NOT_FOUND, MISSING_FOLDER, NO_FRAMES, UNKNOWN_LABEL, ProblemLog,
)
from mer_cache.catalogue.video import clip_from_video
from mer_cache.errors import DatasetError

REQUIRED = ("subject", "clip", "label", "frames_dir")
DEFAULT_FPS = 30.0  # used when neither the row nor the fps option gives one


def find_manifest(root: Path | str) -> Path:
    """``root`` itself when it is a CSV file, else ``root/manifest.csv``."""
    root = Path(root).expanduser()
    if root.is_file():
        return root
    require_root(root, dataset="manifest")
    path = root / "manifest.csv"
    if not path.is_file():
        raise DatasetError(
            f"No manifest.csv in {root}. Pass the manifest CSV itself with --root; it needs the "
            f"columns {', '.join(REQUIRED)} (optional onset, apex, offset, fps)."
        )
    return path


def _index(value: str, *, what: str, n: int, ctx: str, path: Path, clip_id: str,
           problems: ProblemLog) -> int | None:
    if not value.strip():
        return None
    try:
        idx = int(float(value))
    except ValueError:
        idx = -1
    if not 0 <= idx < n:
        problems.warning(FRAME_NOT_FOUND, path,
                         f"{ctx} ({clip_id}): {what} {value!r} is not a frame index 0..{n - 1}; "
                         "it is treated as not annotated.", clip_id=clip_id)
        return None
    return idx


def _check_order(marks: dict, *, ctx: str, path: Path, clip_id: str, problems: ProblemLog) -> None:
    """Warn when onset > offset, or the apex lies outside onset..offset."""
    onset, apex, offset = marks["onset"], marks["apex"], marks["offset"]
    if onset is not None and offset is not None and onset > offset:
        problems.warning(APEX_RANGE, path, f"{ctx} ({clip_id}): onset {onset} is after offset "
                         f"{offset}; check the annotation (are the columns swapped?).", clip_id=clip_id)
    elif None not in (onset, apex, offset) and not onset <= apex <= offset:
        problems.warning(APEX_RANGE, path, f"{ctx} ({clip_id}): apex {apex} is outside "
                         f"onset..offset {onset}..{offset}.", clip_id=clip_id)


def load_manifest(root: Path | str, *, problems: ProblemLog, fps: float | None = None,
                  name: str = "manifest", labels: str | tuple[str, ...] | None = None) -> list[Clip]:
    """Clips listed in a manifest CSV.

    Parameters
    ----------
    root : Path
        The CSV file, or a folder holding ``manifest.csv``.
    fps : float, optional
        Frame rate for rows without an ``fps`` value (30 when not given).
    name : str
        Dataset name used in clip ids (``<name>/<subject>/<clip>``).
    labels : str or tuple of str, optional
        Allowed labels (comma-separated string or tuple); other labels are fatal problems.
    """
    path = find_manifest(root)
    fps = as_fps(fps, dataset=name)
    allowed = None
    if labels is not None:
        allowed = {s.strip() for s in (labels.split(",") if isinstance(labels, str) else labels)}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            reader.fieldnames = header
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"Cannot read the manifest {path}: {exc}. Save it as UTF-8 CSV.") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DatasetError(
            f"The manifest {path} has no column {', '.join(repr(m) for m in missing)} (it has "
            f"{', '.join(repr(h) for h in header) or 'no header'}). Required columns: "
            f"{', '.join(REQUIRED)}; optional: onset, apex, offset, fps."
        )
    clips: list[Clip] = []
    for line, row in enumerate(rows, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k is not None}
        ctx = f"line {line} of {path.name}"
        subject, clip_name, label = row["subject"], row["clip"], row["label"]
        clip_id = f"{name}/{subject}/{clip_name}"
        empty = [c for c in ("subject", "clip", "frames_dir") if not row[c]]
        if empty:
            # an empty subject would silently become one shared subject (train and test)
            problems.fatal(EMPTY_CELL, path,
                           f"{ctx}: the {' and '.join(empty)} cell(s) are empty; every row needs "
                           f"{', '.join(REQUIRED)}. Fill them in or delete the line.",
                           clip_id=clip_id)
            continue
        if not label or (allowed is not None and label not in allowed):
            problems.fatal(UNKNOWN_LABEL, path,
                           f"{ctx} ({clip_id}): label {label or '(empty)'!r} is not allowed"
                           + (f" (allowed: {', '.join(sorted(allowed))})" if allowed else "")
                           + "; fix the manifest.", clip_id=clip_id)
            continue
        target = Path(row["frames_dir"]).expanduser()
        target = target if target.is_absolute() else path.parent / target
        try:
            row_fps = float(row["fps"]) if row.get("fps") else None
        except ValueError:
            raise DatasetError(f"{ctx}: fps {row['fps']!r} is not a number; fix the manifest.") from None
        if target.is_file() and target.suffix.lower() in VIDEO_SUFFIXES:
            # a huge n lets clip_from_video check the range against the real frame count
            marks = {k: _index(row.get(k, ""), what=k, n=2**31, ctx=ctx, path=path, clip_id=clip_id,
                               problems=problems) for k in ("onset", "apex", "offset")}
            clip = clip_from_video(dataset=name, subject=subject, clip_name=clip_name, path=target,
                                   label=label, problems=problems, context=ctx,
                                   fps=row_fps or fps, **marks)
            if clip is not None:
                _check_order({k: getattr(clip, k) for k in marks}, ctx=ctx, path=path,
                             clip_id=clip_id, problems=problems)
                clips.append(clip)
            continue
        if not target.is_dir():
            problems.fatal(MISSING_FOLDER, target, f"{ctx} ({clip_id}): frames_dir does not exist.",
                           clip_id=clip_id)
            continue
        frames = list_frames(target)
        if not frames:
            problems.fatal(NO_FRAMES, target, f"{ctx} ({clip_id}): frames_dir holds no image.",
                           clip_id=clip_id)
            continue
        if groups := duplicate_frames(frames):
            problems.fatal(DUPLICATE_FRAMES, target, f"{ctx} ({clip_id}): "
                           + duplicates_message(target, groups), clip_id=clip_id)
            continue
        marks = {k: _index(row.get(k, ""), what=k, n=len(frames), ctx=ctx, path=path,
                           clip_id=clip_id, problems=problems) for k in ("onset", "apex", "offset")}
        _check_order(marks, ctx=ctx, path=path, clip_id=clip_id, problems=problems)
        clips.append(Clip(dataset=name, subject=subject, clip_id=clip_id, label=label,
                          frames=frames, fps=row_fps or fps or DEFAULT_FPS, attrs={"manifest_line": line}, **marks))
    return clips
