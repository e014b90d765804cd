"""The job API: what a notebook and the CLI call.

Each job takes plain options, runs the mechanisms (extract, heads, finetune, gradcam) under the
protocol layer's rules, and owns its output folder: run-directory formats, resume rules and
the leakage guard live here and nowhere else, so every route (CLI or notebook) gets the same
checks.

- :func:`run_extract_job`, :func:`run_extract_finetuned_job` / :func:`extract_finetuned`:
  caches, one per fold for a fine-tuning run;
- :func:`train_head`, :func:`train_head_seeds`, :func:`run_sweep`: head runs (nested selection
  for sweeps), refusing features whose trunk saw a test subject;
- :func:`finetune`: the Exp-I run; :func:`run_gradcam`: heat maps;
- :func:`predict_clips`: a trained run applied to new clips;
- :func:`load_inputs`: a cache or a fold-cache folder as the heads' input.

Submodules are imported on first use (PEP 562), so ``import mer_cache.pipelines`` stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ExtractJob": "extract", "run_extract_job": "extract", "run_extract_finetuned_job": "extract",
    "extract_finetuned": "fold_caches", "FoldCachesResult": "fold_caches",
    "FoldFeatures": "fold_features", "load_fold_features": "fold_features",
    "is_fold_cache_dir": "fold_features", "open_fold_caches": "fold_features",
    "load_inputs": "inputs",
    "train_head": "head_training", "LEAK_MESSAGE": "head_training", "SubjectLeakWarning": "head_training", "RunResult": "head_runs", "train_head_seeds": "seeds",
    "run_sweep": "sweep", "SweepResult": "sweep",
    "finetune": "finetune_run", "FinetuneResult": "finetune_run",
    "fuse_runs": "fusion", "FusionResult": "fusion",
    "run_flow_extract_job": "flow_jobs", "FlowConfig": "flow_jobs",
    "face_problems": "faces_jobs", "check_dataset_deep": "faces_jobs",
    "fetch_mtcnn": "faces_jobs", "load_mtcnn_state": "faces_jobs",
    "write_preview": "faces_jobs",
    "run_gradcam": "gradcam", "resolve_regions": "gradcam", "regions_for_clips": "gradcam",
    "predict_clips": "predict", "Prediction": "predict",
    "ExtractOptions": "extract", "resolve_device": "extract",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mer_cache.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mer_cache.pipelines.{_EXPORTS[name]}"), name)
