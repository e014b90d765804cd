"""What identifies a cache: the trunk, its weights, the layer, the preprocessing, the clips.

Two extraction runs may share one cache folder only when every identity field agrees;
versions are provenance (recorded, and a difference is reported as a note, not refused).
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable

from mer_cache.catalogue.clip import Clip

# Fields whose disagreement makes two runs write incompatible features.
IDENTITY_FIELDS = (
    "trunk", "layer", "dim", "weights_sha256", "weights_format", "preprocessing",
    "dtype", "catalogue_sha256", "n_clips", "finetune", "face",
)
PROVENANCE_FIELDS = ("weights_path", "package_version", "torch_version", "zarr_version")


def catalogue_sha256(clips: Iterable[Clip]) -> str:
    """Hash of what the cache's rows depend on: ids, labels, frame names, annotations.

    Frame *names* (not absolute paths) enter the hash, so moving a dataset folder keeps
    its caches valid while renaming, adding or removing a frame does not.
    """
    h = hashlib.sha256()
    for c in clips:
        names = [p.name for p in c.frames] if c.video is None else [c.video.name, str(c.video_frames)]
        row = [c.clip_id, c.dataset, c.subject, c.label, c.onset, c.apex, c.offset, names]
        h.update(json.dumps(row, default=str).encode())
        h.update(b"\n")
    return h.hexdigest()


def build_fingerprint(
    trunk_identity: dict, *, dtype: str, clips: list[Clip], finetune: dict | None = None,
    face: dict | None = None,
) -> dict:
    """The fingerprint stored in a cache's root attributes.

    ``face`` is the face stage's identity (detector, its weights' digests, template,
    margin, reference frames), None when frames go to the trunk as they are.
    """
    import torch
    import zarr

    from mer_cache import __version__

    fp = dict(trunk_identity)
    fp.update(
        dtype=dtype,
        catalogue_sha256=catalogue_sha256(clips),
        n_clips=len(clips),
        finetune=finetune,
        face=face,
        package_version=__version__,
        torch_version=torch.__version__,
        zarr_version=zarr.__version__,
    )
    return json.loads(json.dumps(fp))  # normalise tuples -> lists, as stored


def diff_fingerprints(stored: dict, new: dict, *, identity_fields: tuple[str, ...] = IDENTITY_FIELDS,
                      provenance_fields: tuple[str, ...] = PROVENANCE_FIELDS,
                      ) -> tuple[list[str], list[str]]:
    """(identity differences, provenance differences) as readable lines.

    The field lists default to the embedding cache's; the flow cache passes its own.
    """

    def lines(fields: tuple[str, ...]) -> list[str]:
        out = []
        for f in fields:
            a, b = stored.get(f), new.get(f)
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):  # name the keys that differ
                # (cut at 80 characters, two face settings looked alike)
                out += [f"{f}.{k}: cache has {_short(a.get(k))}, this run has {_short(b.get(k))}"
                        for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            else:
                out.append(f"{f}: cache has {_short(a)}, this run has {_short(b)}")
        return out

    return lines(identity_fields), lines(provenance_fields)


def _short(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
