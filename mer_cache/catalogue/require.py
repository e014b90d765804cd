"""Zero clips is an error, not an empty success: an empty cache would report "complete"."""

from __future__ import annotations

from pathlib import Path

from mer_cache.errors import DatasetError


def require_clips(clips: list, *, out: Path | str, dataset: str | None = None,
                  root: Path | str | None = None) -> None:
    """Raise :class:`DatasetError` when ``clips`` is empty (what was loaded, if known)."""
    if clips:
        return
    if dataset is not None:
        raise DatasetError(
            f"The {dataset} loader found 0 clips in {root}, so there is nothing to extract into "
            f"{out}. Check --dataset (frame folders need 'folder', videos 'video') and --root; "
            f"`mer-cache datasets check --dataset {dataset} --root {root}` shows what it sees.")
    raise DatasetError(
        f"0 clips were given to extract into {out}: an empty cache would say it is complete and "
        "hide the mistake. Check the catalogue the clips came from (`mer-cache datasets check`).")
