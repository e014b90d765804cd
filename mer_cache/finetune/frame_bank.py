"""Every frame of the kept clips decoded once into one ``uint8`` tensor.

Fine-tuning visits each training frame many times (epochs x Aug.-I copies x folds), so frames
are decoded and resized once, in threads (PIL releases the GIL), and kept as uint8:
3,740 demo frames at 64x64 gray are 15 MB; SMIC-HS's ~10,400 frames at 224x224 RGB ~1.6 GB.
With face alignments (one per clip, :mod:`mer_cache.faces`) every frame is warped by its
clip's transform before the resize, exactly as ``extract --face align`` feeds the trunk; a
clip whose alignment failed has no rows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import DatasetError
from mer_cache.faces import ClipAlignment
from mer_cache.faces.stage import aligned_frame
from mer_cache.frames import load_frame
from mer_cache.trunks.spec import Preprocessing


@dataclass(frozen=True)
class FrameBank:
    """Frames ``(N, C, H, W)`` uint8 and, per frame, the position of its clip in ``clips``."""

    frames: torch.Tensor
    clip_of_frame: np.ndarray

    def rows_of(self, clip_positions: np.ndarray) -> np.ndarray:
        """Frame rows of the given clip positions (into the bank's clips), in order."""
        return np.flatnonzero(np.isin(self.clip_of_frame, clip_positions))


def load_frame_bank(clips: list[Clip], pre: Preprocessing, *, workers: int = 2,
                    alignments: list[ClipAlignment] | None = None) -> FrameBank:
    """Decode all frames of ``clips`` (frame-folder clips only).

    ``alignments`` (one per clip): warp each frame by its clip's transform; clips whose
    alignment carries an ``error`` are left out (no rows).

    Raises
    ------
    DatasetError
        When a clip is a video or a frame cannot be decoded (the first failures are named).
    """
    videos = [c.clip_id for c in clips if c.video is not None]
    if videos:
        raise DatasetError(f"Fine-tuning reads frame folders; {len(videos)} clips are videos "
                           f"(e.g. {videos[0]}). Extract their frames to folders first.")
    use = [i for i in range(len(clips)) if alignments is None or alignments[i].error is None]
    paths = [p for i in use for p in clips[i].frames]
    clip_of_frame = np.repeat(np.asarray(use, np.int64), [len(clips[i].frames) for i in use])
    h, w = pre.input_size
    out = np.empty((len(paths), pre.n_channels, h, w), np.uint8)
    failures: list[str] = []

    def work(i: int) -> None:
        try:
            if alignments is None:
                out[i] = load_frame(paths[i], pre)
            else:
                out[i] = aligned_frame(paths[i], alignments[clip_of_frame[i]], pre)
        except DatasetError as exc:
            failures.append(str(exc))

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, range(len(paths))))
    else:
        for i in range(len(paths)):
            work(i)
    if failures:
        raise DatasetError(f"{len(failures)} frame(s) could not be decoded, so no fold can train "
                           f"on complete data: {' '.join(failures[:3])}")
    return FrameBank(torch.from_numpy(out), clip_of_frame)
