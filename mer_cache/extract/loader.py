"""A frame-level Dataset: DataLoader workers decode and resize frames to uint8.

Items are frames of the pending clips in clip order, so a batch packs frames across clip
boundaries and the trunk always sees full batches. A frame that fails to decode yields a
zero image plus its error text; the writer then fails only that frame's clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mer_cache.catalogue.clip import Clip
from mer_cache.errors import DatasetError
from mer_cache.faces.stabilise import Stabiliser
from mer_cache.faces.stage import aligned_frame, aligned_input, read_video_frames
from mer_cache.frames import array_to_input, load_frame
from mer_cache.trunks.spec import Preprocessing


@dataclass(frozen=True)
class FrameRef:
    clip_index: int  # index in the cache's clip table
    frame_index: int


class FrameDataset(Dataset):
    """Frames of ``clips[indices]``; with ``alignments`` (one per clip, from
    :mod:`mer_cache.faces`) each frame is warped to its clip's face crop before the resize."""

    def __init__(self, clips: list[Clip], indices: list[int], pre: Preprocessing,
                 alignments: list | None = None, *, stabilise: bool = False) -> None:
        self.clips = clips
        self.pre = pre
        self.alignments = alignments
        self.stabiliser = Stabiliser() if stabilise and alignments is not None else None
        self.refs = [FrameRef(i, f) for i in indices for f in range(clips[i].n_frames)]

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, k: int):
        ref = self.refs[k]
        clip = self.clips[ref.clip_index]
        error = ""
        try:
            if clip.video is not None:
                arr = self._video_frame(clip, ref.frame_index, ref.clip_index)
            elif self.alignments is not None:
                arr = aligned_frame(clip.frames[ref.frame_index],
                                    self.alignments[ref.clip_index], self.pre,
                                    stabiliser=self.stabiliser, first=clip.frames[0])
            else:
                arr = load_frame(clip.frames[ref.frame_index], self.pre)
        except DatasetError as exc:
            error = str(exc)
            c = self.pre.n_channels
            arr = np.zeros((c, *self.pre.input_size), dtype=np.uint8)
        return torch.from_numpy(arr), ref.clip_index, ref.frame_index, error


    def _video_frame(self, clip: Clip, index: int, clip_index: int) -> np.ndarray:
        # Frames of a clip arrive in order within a worker's batch, so decoding the whole
        # video once and keeping the last clip avoids a seek per frame.
        if getattr(self, "_video_key", None) != clip.clip_id:
            self._video_frames = read_video_frames(clip.video)
            self._video_key = clip.clip_id
        if index >= len(self._video_frames):
            raise DatasetError(f"{clip.video}: frame {index} is past the {len(self._video_frames)} "
                               "frames the file decodes to.")
        if self.alignments is not None:
            a, frames = self.alignments[clip_index], self._video_frames
            if self.stabiliser is not None:
                a = self.stabiliser.frame_alignment(frames[index], a, clip.clip_id,
                                                    lambda: frames[0])
            return aligned_input(frames[index], a, self.pre)
        return array_to_input(self._video_frames[index], self.pre)


def _collate(items):
    images = torch.stack([it[0] for it in items])  # (B, C, H, W) uint8
    clip_idx = torch.tensor([it[1] for it in items], dtype=torch.int64)
    frame_idx = torch.tensor([it[2] for it in items], dtype=torch.int64)
    errors = [it[3] for it in items]
    return images, clip_idx, frame_idx, errors


def frame_loader(dataset: FrameDataset, *, batch_size: int, workers: int,
                 pin_memory: bool) -> DataLoader:
    """Ordered (unshuffled) batches; workers prefetch while the trunk computes."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=_collate, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=4 if workers > 0 else None,
    )
