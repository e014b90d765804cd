"""Late fusion of finished head runs: one score for "flow and embeddings together".

Two (or more) runs trained under the same protocol, folds and seed on caches of the same
clips (for instance ``ststnet`` on a flow cache and ``bilstm`` on an embedding cache) each
hold, per fold, the test clips' logits from a head that never saw those clips' subjects.
Fusing them clip by clip (mean of the runs' softmax probabilities) therefore stays
subject-independent, needs no training and no choice made on test data, and is scored
exactly like a run (pooled UF1 / UAR, per fold, per dataset). The folds are checked to be
the same, clip by clip; anything else is refused.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer_cache.errors import ConfigError, ProtocolError
from mer_cache.protocol.metrics import summarize

RULE = "mean of the runs' softmax probabilities per clip"
_SAME = ("protocol", "folds", "seed", "labels", "val_subjects")  # what makes two runs' folds equal


@dataclass
class FusionResult:
    metrics: dict
    predictions: list[dict]
    out: Path | None


def _read_run(path: Path) -> dict:
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a finished `mer-cache train-head` run ({exc}). Train it "
                          "to the end first (rerunning the same command resumes it).") from None
    folds = [json.loads((path / f"fold{f['fold']}.json").read_text()) for f in metrics["folds"]]
    with open(path / "predictions.csv", newline="") as fh:
        rows = {r["clip"]: r for r in csv.DictReader(fh)}
    return {"path": path, "config": config["config"], "classes": metrics["classes"],
            "arch": metrics["arch"], "subject_independent": metrics["subject_independent"],
            "folds": folds, "rows": rows}


def _check_compatible(runs: list[dict]) -> None:
    first = runs[0]
    for run in runs[1:]:
        diffs = [f"{k}: {first['config'].get(k)} in {first['path']}, {run['config'].get(k)} in "
                 f"{run['path']}" for k in _SAME if first["config"].get(k) != run["config"].get(k)]
        if run["classes"] != first["classes"]:
            diffs.append(f"classes {first['classes']} vs {run['classes']}")
        if diffs:
            raise ConfigError("Runs can be fused only when they were trained on the same folds "
                              "and classes: " + "; ".join(diffs) + ". Retrain one with the "
                              "other's --protocol, --folds, --seed, --labels and --val-subjects.")
        if len(run["folds"]) != len(first["folds"]):
            raise ProtocolError(f"{run['path']} has {len(run['folds'])} folds, {first['path']} "
                                f"{len(first['folds'])}.")
        for a, b in zip(first["folds"], run["folds"]):
            if sorted(a["test_clip_ids"]) != sorted(b["test_clip_ids"]):
                raise ProtocolError(
                    f"Fold {a['fold']} tests other clips in {run['path']} than in {first['path']}: "
                    "the caches do not hold the same clips with the same labels, so fusing would "
                    "mix predictions of heads that saw a test clip's subject. Extract both caches "
                    "from the same dataset root and loader options.")


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def fuse_runs(run_dirs: list[Path | str], *, out: Path | str | None = None) -> FusionResult:
    """Fuse finished runs clip by clip and score the fused predictions.

    Parameters
    ----------
    run_dirs : list of Path
        At least two ``train-head`` run directories on the same clips, protocol, folds, seed.
    out : Path, optional
        Where to write ``config.json``, ``metrics.json`` and ``predictions.csv``.

    Raises
    ------
    ConfigError
        Fewer than two runs, an unfinished run, or runs with other folds or classes.
    ProtocolError
        When a fold's test clips differ between the runs.
    """
    if len(run_dirs) < 2:
        raise ConfigError(f"Fusion needs at least two runs, got {len(run_dirs)}.")
    runs = [_read_run(Path(p)) for p in run_dirs]
    _check_compatible(runs)
    classes = runs[0]["classes"]
    clip_ids, fold_of, probs = [], [], []
    for k, fold in enumerate(runs[0]["folds"]):
        ids = list(fold["test_clip_ids"])
        p = np.zeros((len(ids), len(classes)))
        for run in runs:
            rec = run["folds"][k]
            row = {c: i for i, c in enumerate(rec["test_clip_ids"])}
            logits = np.asarray(rec["logits"], dtype=np.float64)[[row[c] for c in ids]]
            p += _softmax(logits) / len(runs)
        clip_ids += ids
        fold_of += [fold["fold"]] * len(ids)
        probs.append(p)
    prob = np.concatenate(probs)  # (n, C)
    rows0 = runs[0]["rows"]
    true = np.array([classes.index(rows0[c]["true"]) for c in clip_ids])
    pred = prob.argmax(1)
    datasets = np.array([rows0[c]["dataset"] for c in clip_ids])
    arch = "fusion(" + "+".join(r["arch"] for r in runs) + ")"
    metrics = {"arch": arch, "protocol": runs[0]["config"]["protocol"],
               "subject_independent": all(r["subject_independent"] for r in runs),
               **summarize(true, pred, np.array(fold_of), datasets, classes=tuple(classes),
                           subjects=np.array([f"{rows0[c]['dataset']}/{rows0[c]['subject']}"
                                              for c in clip_ids]),
                           seed=int(runs[0]["config"].get("seed", 0))),
               "rule": RULE, "runs": [str(r["path"]) for r in runs]}
    predictions = [{"clip": c, "subject": rows0[c]["subject"], "dataset": rows0[c]["dataset"],
                    "fold": int(f), "true": classes[t], "predicted": classes[q],
                    **{f"p_{name}": round(float(v), 6) for name, v in zip(classes, pr)}}
                   for c, f, t, q, pr in zip(clip_ids, fold_of, true, pred, prob)]
    if out is not None:
        _write(Path(out), runs, metrics, predictions)
    return FusionResult(metrics=metrics, predictions=predictions,
                        out=None if out is None else Path(out))


def _write(out: Path, runs: list[dict], metrics: dict, predictions: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"rule": RULE, "runs": [{"path": str(r["path"]), "arch": r["arch"], "config": r["config"]}
                                  for r in runs]}
    for name, data in (("config.json", doc), ("metrics.json", metrics)):
        tmp = out / f"{name}.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, out / name)
    with open(out / "predictions.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(predictions[0]))
        writer.writeheader()
        writer.writerows(predictions)
