"""Predict the class of new clips with a finished ``train-head`` run.

A head only means something on the features it was trained on, so the trunk is rebuilt
from the run's cache fingerprint (trunk, layer, weights, preprocessing incl. resize mode)
and its identity is checked against that fingerprint before any frame is embedded. Every
frame of a clip folder is embedded, the embeddings go through the cache's storage dtype
and back (a float16 cache rounds them, and the heads were trained on the rounded values),
and every fold's head predicts the clip as training did at test time: the mean of the
logits of all its windows, a clip shorter than the window padded by repeating its edge
frames (:func:`mer_cache.heads.windows.make_windows`). The ensemble is the mean over folds
of each fold's softmax.

A clip folder whose frames cannot be used (a frame that does not decode; on a run whose
cache was aligned, no usable face in its first frames) fails alone: its
:class:`Prediction` carries the reason in ``error`` and the other clips are predicted, as
``extract`` fails a clip and writes the others. A folder that is missing, empty or holds
duplicate frame numbers is a wrong argument and stops the call before anything is embedded.

Runs trained on fine-tuned fold caches (``extract --finetuned-run``) are refused: each
fold's head needs its own fold's fine-tuned trunk, which the run's single fingerprint does
not name.
"""

from __future__ import annotations

import json
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from mer_cache.catalogue.clip import duplicate_frames, duplicates_message, list_frames
from mer_cache.extract.extractor import resolve_device  # noqa: F401  (the CLI's device choice)
from mer_cache.errors import ConfigError, DatasetError, WeightsError
from mer_cache.heads.models import TemporalHead, load_head
from mer_cache.heads.training import predict_sequences
from mer_cache.trunks import create_trunk
from mer_cache.trunks.base import Trunk

# fields of the fingerprint that the rebuilt trunk must reproduce exactly
CHECKED_FIELDS = ("trunk", "layer", "dim", "weights_sha256", "preprocessing")
_FOLD_FILE = re.compile(r"^fold(\d+)\.pt$")
# A clip without a usable face on a run trained on aligned crops: the remedy is another
# clip or another run; whole frames would give features the heads never saw.
NO_FACE_ADVICE = ("The run's heads were trained on aligned face crops, so this clip is not "
                  "predicted. Check that the folder holds the clip's frames with the face "
                  "visible in its first frames, or predict with a run trained on a cache "
                  "extracted with --face none (whole frames).")

Progress = Callable[[int, int], None]  # (clips done, clips total)


@dataclass(frozen=True)
class FoldHead:
    """One fold's head and the settings it predicts with (from its checkpoint)."""

    fold: int
    head: TemporalHead
    window: int
    stride: int
    precision: str
    classes: tuple[str, ...]
    reference: str = "none"  # what each clip's frames were expressed against in training


@dataclass(frozen=True)
class Prediction:
    """The ensemble prediction of one clip folder, or why it has none.

    Attributes
    ----------
    path : Path
        The clip folder.
    n_frames : int
    padded : bool
        True when the clip is shorter than the window (edge frames repeated, as in training).
    probabilities : dict
        Class -> mean over folds of the fold's softmax probability (empty when failed).
    predicted : str or None
        The class with the highest ensemble probability (None when failed).
    folds : list of dict
        Per fold: ``fold``, ``predicted`` and ``probabilities`` (class -> probability).
    error : str or None
        Why the clip could not be predicted (names the folder or frame and what to do);
        None when it was.
    """

    path: Path
    n_frames: int
    padded: bool
    probabilities: dict[str, float]
    predicted: str | None
    folds: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "n_frames": self.n_frames, "padded": self.padded,
                "predicted": self.predicted, "probabilities": self.probabilities,
                "folds": self.folds, "error": self.error}


def _read_run(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a train-head run directory (no config.json). Pass "
                          f"the --out folder of `mer-cache train-head` as --run.")
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); the run directory is damaged. "
                          f"Train the head again into a new --out.") from None
    fp = doc.get("fingerprint")
    if not isinstance(fp, dict) or not fp.get("trunk"):
        raise ConfigError(f"{path} records no cache fingerprint, so the trunk that made the "
                          f"head's features is unknown. predict needs a run trained with "
                          f"`mer-cache train-head --cache ...`.")
    if fp.get("finetune"):
        ft = fp["finetune"]
        raise ConfigError(
            f"The run {run_dir} was trained on fine-tuned fold caches (fold {ft.get('fold')} of "
            f"{ft.get('checkpoint')}): each fold's head needs its own fold's fine-tuned trunk, "
            f"which predict does not rebuild. Predict with a run trained on a cache of the "
            f"pretrained trunk, or embed the clip with each fold's checkpoint "
            f"(`mer-cache embed --weights foldK.pt`) and apply that fold's head yourself.")
    return doc


def load_fold_heads(run_dir: Path | str) -> list[FoldHead]:
    """Every fold's head of a finished run, checked to agree on classes.

    Raises
    ------
    ConfigError
        If the run has no fold checkpoints, is unfinished, or a checkpoint cannot be read.
    """
    run_dir = Path(run_dir)
    found = sorted((int(m.group(1)), p) for p in run_dir.iterdir()
                   if (m := _FOLD_FILE.match(p.name))) if run_dir.is_dir() else []
    metrics = run_dir / "metrics.json"
    if not found or not metrics.is_file():
        raise ConfigError(f"The run {run_dir} is not finished (fold checkpoints found: "
                          f"{[k for k, _ in found] or 'none'}, metrics.json "
                          f"{'present' if metrics.is_file() else 'missing'}). Rerun the same "
                          f"`mer-cache train-head` command to finish it, then predict.")
    try:
        expected = {d["fold"] for d in json.loads(metrics.read_text()).get("fold_details", [])}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{metrics} cannot be read ({type(exc).__name__}: {exc}). Delete it and "
                          f"rerun the same `mer-cache train-head` command: it rewrites it from "
                          f"the finished folds.") from None
    missing = sorted(expected - {k for k, _ in found})
    if missing:
        raise ConfigError(f"The run {run_dir} lacks the checkpoints of folds {missing}; rerun "
                          f"the same `mer-cache train-head` command to rewrite them.")
    heads = []
    for k, path in found:
        try:
            head, meta = load_head(path)
        except (KeyError, RuntimeError, OSError, TypeError, ValueError, EOFError, AttributeError,
                pickle.UnpicklingError) as exc:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"{path} is not a readable head checkpoint ({why}): it was cut "
                              f"short, overwritten or is not a file train-head wrote. Delete "
                              f"{path} and rerun the same `mer-cache train-head` command: it "
                              f"retrains that fold only.") from None
        if meta.get("task", "emotion") != "emotion":  # its outputs are AUs, not classes
            raise ConfigError(f"{path} is a head of task '{meta['task']}'; predict applies emotion "
                              f"runs only. Its test-clip AU probabilities are in "
                              f"{run_dir / 'predictions.csv'}.")
        heads.append(FoldHead(k, head, int(meta["window"]), int(meta["window_stride"]),
                              str(meta["precision"]), tuple(meta["classes"]),
                              str(meta.get("reference", "none"))))
    classes = {h.classes for h in heads}
    if len(classes) != 1:
        raise ConfigError(f"The fold heads in {run_dir} disagree on the classes ({sorted(classes)}); "
                          f"the run directory mixes runs. Train the head again into a new --out.")
    return heads


def _weights_choice(fp: dict, weights: Path | str | None) -> tuple[Path | str | None, str]:
    """What to load, and how it was chosen (for messages)."""
    if weights is not None:
        return (weights if str(weights) == "random" else Path(weights)), f"--weights {weights}"
    if fp.get("weights_format") == "random":
        return "random", "random weights (as the cache was made)"
    recorded = fp.get("weights_path")
    if recorded and Path(recorded).is_file():
        return Path(recorded), f"the file the cache was made from ({recorded})"
    return None, (f"the default weight file of {fp['trunk']}" +
                  (f" (the recorded {recorded} does not exist)" if recorded else ""))


def build_run_trunk(fingerprint: dict, *, weights: Path | str | None = None) -> Trunk:
    """Rebuild the trunk a cache was made with and check it reproduces the fingerprint.

    Parameters
    ----------
    fingerprint : dict
        The cache fingerprint (a run's ``config.json`` holds it).
    weights : Path or "random", optional
        Weight file; default: the recorded path if it exists, else the trunk's default file
        ('random' when the cache was made with random weights).

    Raises
    ------
    WeightsError
        If the weights cannot be loaded or their sha256 differs from the fingerprint's.
    ConfigError
        If the layer, size or preprocessing differ from the fingerprint's.
    """
    fp = fingerprint
    choice, how = _weights_choice(fp, weights)
    resize_mode = (fp.get("preprocessing") or {}).get("resize_mode", "stretch")
    want_sha = fp.get("weights_sha256")
    try:
        trunk = create_trunk(fp["trunk"], weights=choice, layer=fp.get("layer"), resize_mode=resize_mode)
    except WeightsError as exc:
        raise WeightsError(f"The run's features come from {fp['trunk']} weights with sha256 "
                           f"{want_sha}; loading {how} failed: {exc} Pass that file with "
                           f"--weights.") from None
    got = json.loads(json.dumps(trunk.identity()))  # tuples -> lists, as the fingerprint stores
    differ = [f for f in CHECKED_FIELDS if got.get(f) != fp.get(f)]
    if not differ:
        return trunk
    lines = "; ".join(f"{f}: run has {json.dumps(fp.get(f))}, rebuilt trunk has "
                      f"{json.dumps(got.get(f))}" for f in differ)
    if differ == ["weights_sha256"]:
        raise WeightsError(f"The trunk rebuilt from {how} is not the one the run's cache was made "
                           f"with ({lines}). Pass the weight file with sha256 {want_sha} as "
                           f"--weights (the cache recorded {fp.get('weights_path') or 'no path'}).")
    raise ConfigError(f"The trunk rebuilt for this run does not reproduce its cache's features "
                      f"({lines}). The run's config.json may have been edited or made by another "
                      f"mer-cache version; retrain the head on a cache made with this version, "
                      f"or pass the right --weights.")


def clip_frames(folder: Path) -> list[Path]:
    """The frame files of a clip folder, in order.

    Raises
    ------
    DatasetError
        If the folder is missing, holds no image frames, or repeats a frame number.
    """
    if not folder.is_dir():
        raise DatasetError(f"The clip folder {folder} does not exist or is not a folder. Pass "
                           f"folders that hold a clip's frames (img1.jpg, img2.jpg, ...).")
    frames = list_frames(folder)
    if not frames:
        raise DatasetError(f"The clip folder {folder} holds no image frames (.bmp, .jpg, .png, "
                           f".tif). Pass the folder that holds the clip's frame files.")
    if groups := duplicate_frames(frames):
        raise DatasetError("Cannot predict: " + duplicates_message(folder, groups))
    return list(frames)


def embed_clip(trunk: Trunk, folder: Path, *, device: torch.device, dtype: str,
               batch_size: int = 64, face: dict | None = None,
               frames: list[Path] | None = None) -> np.ndarray:
    """All frames of a clip folder as a ``(T, D)`` float32 array, rounded through ``dtype``.

    ``face``: the run's cache fingerprint ``face`` entry; frames are aligned the same way.
    ``frames``: the folder's :func:`clip_frames`, when listed already.

    Raises
    ------
    DatasetError
        If the folder is missing or holds no image frames; FrameDecodeError for a bad frame;
        FaceError when ``face`` asks for alignment and the clip has no usable face.
    """
    frames = clip_frames(folder) if frames is None else frames
    pre, out = trunk.preprocessing, []
    from mer_cache.faces.stage import clip_input_loader  # the frames-level face stage

    load = clip_input_loader(frames, pre, face, name=str(folder), advice=NO_FACE_ADVICE)
    with torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            x = np.stack([load(p) for p in frames[start:start + batch_size]])  # (b, C, H, W)
            out.append(trunk(torch.from_numpy(x).to(device)).float().cpu().numpy())  # (b, D)
    emb = np.concatenate(out)  # (T, D)
    # the cache stores `dtype`; the heads trained on the stored (rounded) values
    return emb.astype(dtype).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def ensemble_probabilities(heads: Sequence[FoldHead], embeddings: list[np.ndarray], *,
                           device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(mean over folds (n, C), per fold (K, n, C)) of the softmax of each fold's clip logits."""
    per_fold = np.stack([
        _softmax(predict_sequences(h.head, embeddings, window=h.window, stride=h.stride,
                                   precision=h.precision, device=device,
                                   reference=h.reference).astype(np.float64))
        for h in heads])  # (K, n, C)
    return per_fold.mean(axis=0), per_fold


def predict_clips(run_dir: Path | str, clip_dirs: Sequence[Path | str], *,
                  weights: Path | str | None = None, device: str = "cpu",
                  batch_size: int = 64, progress: Progress | None = None) -> list[Prediction]:
    """Class probabilities of clip folders from the ensemble of a run's fold heads.

    Parameters
    ----------
    run_dir : Path
        A finished ``train-head`` run directory (``config.json``, ``fold{k}.pt``).
    clip_dirs : sequence of Path
        Folders, each holding one clip's frames (natural order, as the catalogues list them).
    weights : Path or "random", optional
        Trunk weight file; default: the file the cache recorded, else the trunk's default.
    device : str
        Torch device for the trunk and heads (``cpu``, ``cuda``, ``cuda:1``).
    batch_size : int
        Frames per trunk forward pass.
    progress : callable, optional
        ``progress(clips_done, clips_total)`` after each clip is embedded.

    Returns
    -------
    list of Prediction
        One per clip folder, in the order given. A clip whose frames could not be used (a
        frame that does not decode, no usable face on an aligned run) has ``error`` set
        and no probabilities; the others are predicted all the same.

    Raises
    ------
    ConfigError
        Not a finished run, a fine-tuned run, or a trunk that does not match the fingerprint.
    WeightsError
        Weights missing or not the cache's (sha256 differs), or the face detector's missing.
    DatasetError
        A clip folder is missing, empty or repeats a frame number (checked before any clip
        is embedded).
    """
    run_dir = Path(run_dir)
    if not clip_dirs:
        raise ConfigError("No clip folders given: pass at least one folder of frames.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"Device {device} was asked for, but torch sees no CUDA device. Use the CPU.")
    fp = _read_run(run_dir)["fingerprint"]
    heads = load_fold_heads(run_dir)
    if any(h.head.in_dim != fp["dim"] for h in heads):
        raise ConfigError(f"The heads in {run_dir} take {heads[0].head.in_dim}-d input but the "
                          f"run's fingerprint says {fp['dim']}-d features; the run is damaged.")
    listed = [clip_frames(Path(f)) for f in clip_dirs]  # a wrong folder stops us here
    trunk = build_run_trunk(fp, weights=weights).to(device)
    dtype = fp.get("dtype") or "float32"
    embeddings: dict[int, np.ndarray] = {}
    failed: dict[int, str] = {}
    for i, folder in enumerate(clip_dirs):
        try:
            embeddings[i] = embed_clip(trunk, Path(folder), device=torch.device(device),
                                       dtype=dtype, batch_size=batch_size, face=fp.get("face"),
                                       frames=listed[i])
        except DatasetError as exc:  # this clip's frames or face; the others go on
            failed[i] = str(exc)
        if progress is not None:
            progress(i + 1, len(clip_dirs))
    row = {i: j for j, i in enumerate(sorted(embeddings))}  # clip -> row of the ensemble
    if row:
        mean, per_fold = ensemble_probabilities(heads, [embeddings[i] for i in row],
                                                device=device)  # (n, C), (K, n, C)
    classes = heads[0].classes
    window = max(h.window for h in heads)
    out = []
    for i, folder in enumerate(clip_dirs):
        if i in failed:
            out.append(Prediction(path=Path(folder), n_frames=len(listed[i]), padded=False,
                                  probabilities={}, predicted=None, error=failed[i]))
            continue
        j, emb = row[i], embeddings[i]
        folds = [{"fold": h.fold, "predicted": classes[int(per_fold[k, j].argmax())],
                  "probabilities": {c: float(p) for c, p in zip(classes, per_fold[k, j])}}
                 for k, h in enumerate(heads)]
        out.append(Prediction(
            path=Path(folder), n_frames=len(emb), padded=len(emb) < window,
            probabilities={c: float(p) for c, p in zip(classes, mean[j])},
            predicted=classes[int(mean[j].argmax())], folds=folds))
    return out
