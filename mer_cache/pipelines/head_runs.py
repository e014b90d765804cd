"""The run directory of a head-training run, written so that nothing finished is lost.

Layout of ``runs/NAME``::

    config.json        every option, the data identity, the cache fingerprint, versions, seed
    fold{k}.pt         the fold's head (state dict + what is needed to rebuild it)
    fold{k}.json       the fold's record: subjects, training history, test-clip logits
    metrics.json       pooled / per-fold / per-dataset scores and confusion matrices
    predictions.csv    clip, subject, dataset, fold, true, predicted, probability per class
    confusion_pooled.png, confusion_fold{k}.png

An AU-detection run (``task='au'``) writes per-AU scores and probabilities instead, and no
confusion matrices (:mod:`mer_cache.pipelines.au_runs`).

A fold is written (checkpoint first, then its JSON, each atomically) as soon as it finishes.
Rerunning the same configuration into the same directory opens each fold's JSON and
checkpoint and skips the folds that are complete; a different configuration is refused
with the differences listed. ``metrics.json`` holds no timings, so equal seeds give equal
bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mer_cache.catalogue.aus import AUTargets
from mer_cache.errors import ConfigError
from mer_cache.heads.data import Sequences
from mer_cache.heads.config import HeadConfig
from mer_cache.pipelines.au_runs import au_identity, au_results
from mer_cache.protocol.metrics import summarize

# what must match for a resume; fold_features: the fine-tuning run's folds and checkpoints
# when each fold reads its own fold cache (None for one plain cache); runtime: the precision
# really used and the torch thread count, both of which change the numbers in the last bits
_COMPARED = ("config", "data", "fingerprint", "fold_features", "runtime")


@dataclass
class RunResult:
    """What :func:`train_head` returns; ``metrics`` is what ``metrics.json`` holds."""

    config: HeadConfig
    metrics: dict
    predictions: list[dict]
    folds: list[dict]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    out: Path | None = None


def versions() -> dict:
    """Versions that can change numbers, recorded with every run."""
    import sklearn

    import mer_cache

    return {"mer_cache": getattr(mer_cache, "__version__", "unknown"), "torch": torch.__version__,
            "numpy": np.__version__, "sklearn": sklearn.__version__,
            "python": platform.python_version(), "torch_threads": torch.get_num_threads()}


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _tmp_name(path: Path) -> Path:
    """A temp name no other writer uses (two runs on one --out must not share one)."""
    return path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = _tmp_name(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _diff(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _diff(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        return [f"{prefix.rstrip('.')}: {json.dumps(old)} there, {json.dumps(new)} now"]
    return []


class RunDir:
    """Writes (or, with ``out=None``, only computes) the results of one run.

    Raises
    ------
    ConfigError
        If ``out`` already holds a run with a different configuration or data.
    """

    def __init__(self, out: Path | None, *, config: HeadConfig, seqs: Sequences,
                 notes: list[str], fold_features: dict | None = None,
                 runtime: dict | None = None, au: AUTargets | None = None) -> None:
        self.out = Path(out) if out is not None else None
        self.config, self.seqs, self.notes, self.au = config, seqs, notes, au
        data = seqs.identity() if au is None else {**seqs.identity(), "au_targets": au_identity(au)}
        self.doc = _jsonable({"config": asdict(config), "data": data,
                              "fingerprint": seqs.fingerprint, "fold_features": fold_features,
                              "runtime": runtime,
                              "versions": versions(), "seed": config.seed, "notes": notes})
        if self.out is None:
            return
        path = self.out / "config.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{path} exists but cannot be read ({exc}). Delete the run "
                                  f"directory {self.out} or choose another --out.") from None
            diffs = [d for key in _COMPARED for d in _diff(old.get(key), self.doc[key], key + ".")]
            if diffs:
                raise ConfigError(
                    f"The run directory {self.out} holds a run with another configuration, so it "
                    f"cannot be resumed: {'; '.join(diffs[:8])}. Use another --out, or delete "
                    f"{self.out} to start over.")
        self.out.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(self.doc, indent=2).encode())

    def completed_fold(self, k: int, test_clip_ids: list[str]) -> dict | None:
        """The record of fold ``k`` if it finished before (JSON readable, checkpoint present)."""
        if self.out is None:
            return None
        rec_path, ckpt = self.out / f"fold{k}.json", self.out / f"fold{k}.pt"
        if not (rec_path.is_file() and ckpt.is_file() and ckpt.stat().st_size > 0):
            return None
        try:
            record = json.loads(rec_path.read_text())
            # a checkpoint cut short or overwritten must not pass as finished (predict needs it)
            torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
        except Exception:  # noqa: BLE001 - any unreadable record or checkpoint: train the fold again
            return None
        if record.get("test_clip_ids") != test_clip_ids:
            return None
        return record

    def save_fold(self, record: dict, head: torch.nn.Module) -> None:
        """Write a finished fold: checkpoint, then its record (the record marks completion)."""
        if self.out is None:
            return
        k = record["fold"]
        outputs = self.seqs.classes if self.au is None else self.au.names  # one logit each
        ckpt = {"arch": self.config.arch, "in_dim": self.seqs.dim, "classes": list(outputs),
                "task": self.config.task,
                "head_kwargs": self.config.head_kwargs(), "config": _jsonable(asdict(self.config)),
                "fold": k, "window": self.config.window, "window_stride": self.config.window_stride,
                "precision": record["precision"],
                "reference": self.config.resolved_reference,
                "test_clip_ids": record["test_clip_ids"],
                "state_dict": {n: t.detach().cpu() for n, t in head.state_dict().items()}}
        tmp = _tmp_name(self.out / f"fold{k}.pt")
        try:
            torch.save(ckpt, tmp)
            os.replace(tmp, self.out / f"fold{k}.pt")
        finally:
            tmp.unlink(missing_ok=True)
        write_atomic(self.out / f"fold{k}.json", json.dumps(record).encode())

    def finish(self, records: list[dict]) -> RunResult:
        """Pool the folds' predictions, score them, and write the run's summary files."""
        seqs, classes = self.seqs, self.seqs.classes
        records = sorted(records, key=lambda r: r["fold"])
        if self.au is not None:
            metrics, rows = au_results(seqs, self.au, records, self.config, self.notes)
            if self.out is not None:
                self._write_outputs(metrics, rows, confusions=False)
            return RunResult(config=self.config, metrics=metrics, predictions=rows, folds=records,
                             notes=self.notes, seconds=float(sum(r["seconds"] for r in records)),
                             out=self.out)
        clips = np.concatenate([np.asarray(r["test_clips"], dtype=np.int64) for r in records])
        fold = np.concatenate([[r["fold"]] * len(r["test_clips"]) for r in records])
        logits = np.concatenate([np.asarray(r["logits"], dtype=np.float64) for r in records])
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        pred, true = logits.argmax(1), seqs.y[clips]
        datasets = np.array(seqs.datasets)[clips]
        metrics = summarize(true, pred, fold, datasets, classes=classes,
                            subjects=seqs.groups[clips], seed=self.config.seed)
        metrics = {
            "arch": self.config.arch, "protocol": self.config.protocol,
            "subject_independent": self.config.protocol != "clip-kfold", **metrics,
            "fold_details": [{k: r[k] for k in ("fold", "test_subjects", "val_subjects", "n_train_clips",
                                                "n_train_windows", "windows_per_epoch", "epochs_run",
                                                "best_epoch")} for r in records],
            "notes": self.notes,
        }
        rows = [{"clip": seqs.clip_ids[c], "subject": seqs.subjects[c], "dataset": seqs.datasets[c],
                 "fold": int(f), "true": classes[t], "predicted": classes[p],
                 **{f"p_{name}": round(float(q), 6) for name, q in zip(classes, pr)}}
                for c, f, t, p, pr in zip(clips, fold, true, pred, probs)]
        if self.out is not None:
            self._write_outputs(metrics, rows)
        return RunResult(config=self.config, metrics=metrics, predictions=rows, folds=records,
                         notes=self.notes, seconds=float(sum(r["seconds"] for r in records)),
                         out=self.out)

    def _write_outputs(self, metrics: dict, rows: list[dict], *, confusions: bool = True) -> None:
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(self.out / "predictions.csv", text.getvalue().encode())
        try:
            if confusions:
                plot_confusions(metrics, self.out)
        except ImportError:
            self.notes.append("matplotlib is not installed: confusion PNGs skipped "
                              "(the matrices are in metrics.json)")
        write_atomic(self.out / "metrics.json", json.dumps(metrics, indent=2).encode())


def plot_confusions(metrics: dict, out: Path) -> list[Path]:
    """Confusion matrix PNGs, pooled and per fold (the paper's Fig. 3); needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = metrics["classes"]
    mats = [("pooled", metrics["confusion_pooled"])] + [
        (f"fold{f['fold']}", f["confusion"]) for f in metrics["folds"]]
    paths = []
    for name, mat in mats:
        m = np.asarray(mat)
        fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2, 1.2 * len(classes) + 1.5))
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{metrics['arch']} {metrics['protocol']} {name}")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center",
                        color="white" if m[i, j] > m.max() / 2 else "black")
        fig.tight_layout()
        path = out / f"confusion_{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths
