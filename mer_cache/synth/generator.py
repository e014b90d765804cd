"""Generate a synthetic micro-expression dataset on disk: the tool's built-in default data.

``generate_dataset`` draws every subject (geometry, texture) and every clip (timing,
expression, nuisances) from one seed, renders the frames and writes them in the SMIC-HS or
CASME II layout (:mod:`mer_cache.synth.layouts`), so the real loaders read them. It ends by
writing ``synth.json``: the config, the generator version and, per clip, the ground truth
(class, onset/apex/offset as 0-based indices and as file numbers, the action units and the
bounding box of the face region each one moves) for later scoring.

Each subject has the same number of clips of every class and its identity is drawn
independently of them, so a single frame cannot tell the class; only the motion does.
Random streams are keyed by (seed, subject, clip), so the same seed writes the same bytes
and adding subjects leaves the earlier ones unchanged.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from mer_cache.errors import ConfigError
from mer_cache.synth.actions import ACTION_UNITS, CLASS_ACTION_UNITS, CLASSES, au_region
from mer_cache.synth.face import CROP_PX, build_face, sample_geometry
from mer_cache.synth.layouts import (
    CASME2_EMOTIONS, CASME2_OBJECTIVE, CASME2_XLSX, LAYOUTS, au_cell, casme2_slot, smic_slot,
    write_casme2_workbook, write_frames,
)
from mer_cache.synth.raw import RAW_SIZE, place_in_raw, sample_placement
from mer_cache.synth.render import plan_clip, render_clip

GENERATOR_VERSION = "1.0.0"  # bump when the same config would write different pixels
MANIFEST = "synth.json"

# stream tags of the random generators, keyed with (seed, tag, subject[, clip])
_SUBJECT, _ORDER, _CLIP, _NAMES, _PLACE = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. Defaults give the demo set: 8 subjects x 4 classes x 4 clips."""

    subjects: int = 8
    clips_per_class: int = 4
    seed: int = 0
    layout: Literal["smic", "casme2", "raw"] = "smic"  # raw: casme2 folders, face in a larger frame
    fps: float = 100.0  # SMIC-HS frame rate
    min_frames: int = 11  # SMIC-HS shortest clip
    max_frames: int = 50  # 0.5 s at 100 fps, the usual micro-expression upper bound
    amplitude_px: tuple[float, float] = (1.5, 3.0)  # apex displacement range at 128 px
    blink_prob: float = 0.5  # chance a clip contains a (possibly partial) blink
    nuisances: bool = True  # head motion, blinks, flicker, noise; off only for tests

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ConfigError(f"Unknown synthetic layout '{self.layout}'. Choose one of: "
                              f"{', '.join(LAYOUTS)}.")
        if not 1 <= self.subjects <= 99:
            raise ConfigError(f"--subjects must be between 1 and 99 (got {self.subjects}); "
                              "subject ids are written with two digits.")
        if not 1 <= self.clips_per_class <= 24:
            raise ConfigError(f"--clips-per-class must be between 1 and 24 (got "
                              f"{self.clips_per_class}); episode numbers have two digits.")
        if not 7 <= self.min_frames <= self.max_frames:
            raise ConfigError(f"Clip lengths {self.min_frames}..{self.max_frames} are invalid: "
                              "need 7 <= min_frames <= max_frames so onset < apex < offset fit.")
        lo, hi = self.amplitude_px
        if not 0 < lo <= hi <= 3.0:
            raise ConfigError(f"amplitude_px {self.amplitude_px} must satisfy 0 < low <= high "
                              "<= 3.0 px: micro-expressions move at most about 3 px at 128 px.")
        if not 0.0 <= self.blink_prob <= 1.0:
            raise ConfigError(f"blink_prob {self.blink_prob} must be between 0 and 1.")
        if self.fps <= 0:
            raise ConfigError(f"fps must be positive (got {self.fps}).")


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote."""

    root: Path
    layout: str
    n_subjects: int
    n_clips: int
    n_frames: int
    clips_per_label: dict[str, int] = field(default_factory=dict)
    manifest: Path | None = None
    reused: bool = False  # True when an identical earlier run was found and kept


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _check_out(out: Path) -> dict | None:
    """Refuse to mix with foreign files; return the previous manifest if ``out`` has one."""
    manifest = out / MANIFEST
    if manifest.is_file():
        return json.loads(manifest.read_text())
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and holds files that are not a synthetic dataset "
                          "(no synth.json). Choose an empty or new --out folder.")
    return None


def _remove_previous(out: Path, previous: dict) -> None:
    """Delete what an earlier synth run wrote (and only that)."""
    for rel in previous.get("written", []):
        path = out / rel
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (out / MANIFEST).unlink()


def _summary(out: Path, manifest: dict, reused: bool) -> SynthSummary:
    clips = manifest["clips"]
    counts = {c: sum(1 for clip in clips if clip["class"] == c) for c in CLASSES}
    return SynthSummary(out, manifest["layout"], len(manifest["subjects"]), len(clips),
                        sum(c["n_frames"] for c in clips), counts, out / MANIFEST, reused)


def generate_dataset(out: Path, *, config: SynthConfig, overwrite: bool = False,
                     progress: Callable[[int, int], None] | None = None) -> SynthSummary:
    """Render and write a synthetic dataset.

    Parameters
    ----------
    out : Path
        Output root (created). The loaders read it as the dataset root.
    config : SynthConfig
        What to generate.
    overwrite : bool
        Replace an earlier synthetic dataset in ``out``. Without it, an identical earlier
        run (same config and generator version) is kept as it is and any other one is an
        error.
    progress : callable, optional
        Called as ``progress(done_clips, total_clips)`` after each clip.

    Returns
    -------
    SynthSummary

    Raises
    ------
    ConfigError
        When ``out`` holds foreign files, or another synthetic dataset and not ``overwrite``.
    """
    out = Path(out)
    previous = _check_out(out)
    config_dict = json.loads(json.dumps(asdict(config)))
    if previous is not None:
        same = previous.get("version") == GENERATOR_VERSION and previous.get("config") == config_dict
        if same and not overwrite:
            return _summary(out, previous, reused=True)
        if not overwrite:
            raise ConfigError(f"{out} already holds a synthetic dataset made with other options "
                              "or another generator version. Pass --overwrite to replace it, "
                              "or choose another --out folder.")
        _remove_previous(out, previous)
    out.mkdir(parents=True, exist_ok=True)

    total = config.subjects * config.clips_per_class * len(CLASSES)
    subjects: dict[str, dict] = {}
    clips: list[dict] = []
    xlsx_rows: list[tuple] = []
    for si in range(1, config.subjects + 1):
        rng = _rng(config.seed, _SUBJECT, si)
        geometry = sample_geometry(rng)
        face = build_face(geometry, rng)
        regions = {au: au_region(geometry, au) for au in ACTION_UNITS}
        # clips of a subject in a seeded random order: episode numbers do not reveal the class
        takes = [(label, k) for label in CLASSES for k in range(1, config.clips_per_class + 1)]
        order = _rng(config.seed, _ORDER, si).permutation(len(takes))
        sid = f"s{si}" if config.layout == "smic" else f"sub{si:02d}"  # as loaders name it
        for episode, ti in enumerate(order, start=1):
            label, take = takes[ti]
            plan = plan_clip(_rng(config.seed, _CLIP, si, episode), label,
                             min_frames=config.min_frames, max_frames=config.max_frames,
                             amplitude_px=config.amplitude_px, blink_prob=config.blink_prob,
                             nuisances=config.nuisances, fps=config.fps)
            slot = _slot(config, si, episode, label, take)
            frames = render_clip(face, plan)
            record = _clip_record(slot, plan, regions, config.fps)
            if config.layout == "raw":
                placement = sample_placement(_rng(config.seed, _PLACE, si, episode))
                frames = place_in_raw(frames, placement)
                record["raw_face_box"] = placement["box"]
            write_frames(out, slot, frames)
            clips.append(record)
            if config.layout in ("casme2", "raw"):
                xlsx_rows.append(_xlsx_row(slot, plan))
            if progress is not None:
                progress(len(clips), total)
        subjects[sid] = {"landmarks": {k: [round(v[0], 2), round(v[1], 2)]
                                       for k, v in geometry.landmarks().items()}}
    written = ["HS"] if config.layout == "smic" else ["CASME2_RAW_selected", CASME2_XLSX]
    if config.layout in ("casme2", "raw"):
        xlsx_rows.sort(key=lambda r: (r[0], r[1]))
        write_casme2_workbook(out / CASME2_XLSX, xlsx_rows)
    manifest = {
        "generator": "mer_cache.synth", "version": GENERATOR_VERSION, "config": config_dict,
        "layout": config.layout, "fps": config.fps, "image_size": [CROP_PX, CROP_PX] if config.layout != "raw" else list(RAW_SIZE[::-1]),
        "classes": list(CLASSES), "action_units": ACTION_UNITS,
        "class_action_units": {k: list(v) for k, v in CLASS_ACTION_UNITS.items()},
        "region_format": "x0, y0, x1, y1 in pixels (x1, y1 exclusive), neutral head pose",
        "written": written, "subjects": subjects, "clips": clips,
    }
    # written last: its presence marks a complete dataset
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return _summary(out, manifest, reused=False)


def _slot(config: SynthConfig, si: int, episode: int, label: str, take: int):
    """Names of one clip; first file numbers are random, as in clips cut from long takes."""
    names = _rng(config.seed, _NAMES, si, episode)
    if config.layout == "smic":
        return smic_slot(si, label, take, int(names.integers(1000, 900000)))
    emotions = CASME2_EMOTIONS[label]
    return casme2_slot(si, episode, emotions[take % len(emotions)], int(names.integers(1, 300)))


def _clip_record(slot, plan, regions: dict, fps: float) -> dict:
    def number(index):
        return None if index is None else slot.first_number + index

    aus = CLASS_ACTION_UNITS[plan.label]
    return {
        # subject as the loaders name it (s1, sub01); annotation_subject as files write it
        "clip_id": slot.clip_id, "subject": slot.clip_id.split("/")[1],
        "annotation_subject": slot.subject, "class": plan.label,
        "label": slot.label, "path": slot.folder, "n_frames": plan.n_frames, "fps": fps,
        "first_frame": slot.frame_name(0), "last_frame": slot.frame_name(plan.n_frames - 1),
        "onset": plan.onset, "apex": plan.apex, "offset": plan.offset,
        "onset_frame": number(plan.onset), "apex_frame": number(plan.apex),
        "offset_frame": number(plan.offset),
        "action_units": list(aus), "au_string": "+".join(aus),
        "au_regions": {au: list(regions[au]) for au in aus},
        "au_weights": {au: round(w, 4) for au, w in plan.au_weights.items()},
        "amplitude_px": round(plan.amplitude_px, 4),
        "blinks": [list(b) for b in plan.blinks],
        # per frame: head translation dx, dy (px of the 128 px face) and rotation (degrees)
        # about the point between eyes and mouth; what stabilisation is measured against
        "head_motion": np.round(plan.head, 3).tolist(),
    }


def _xlsx_row(slot, plan) -> tuple:
    n = plan.n_frames
    if plan.onset is None:  # no movement: nominal window over the whole clip
        onset, apex, offset = 0, n // 2, n - 1
    else:
        onset, apex, offset = plan.onset, plan.apex, plan.offset
    return (slot.subject, slot.folder.rsplit("/", 1)[1], slot.first_number + onset,
            slot.first_number + apex, slot.first_number + offset,
            au_cell(CLASS_ACTION_UNITS[plan.label]), slot.label, CASME2_OBJECTIVE[slot.label])
