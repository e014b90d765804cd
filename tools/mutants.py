"""Deliberate mutants of the honesty rules; each must turn the test suite red.

Run from the project root: `.venv/bin/python tools/mutants.py tests/test_protocol_epochs.py
tests/test_protocol_metrics.py tests/test_pipelines_leakage_guard.py tests/test_heads_training.py`.
Every line printed must start with KILLED; a SURVIVED mutant is a rule no test holds.
The files are restored after each mutant.
"""
import subprocess, sys, pathlib
M = [
 ("never stop", "mer_cache/protocol/epochs.py", "        if stop:\n            break\n", "        if stop:\n            pass\n"),
 ("never restore", "mer_cache/protocol/epochs.py", "        stopper.restore(model)", "        pass"),
 ("validation reads test", "mer_cache/protocol/epochs.py", "    val = fold.val\n", "    val = fold.test\n"),
 ("head passes test as val", "mer_cache/heads/training.py", "validate=validation_scorer(fold, seqs.y", "validate=validation_scorer(Fold(fold.index, fold.train, np.empty(0, np.int64), fold.test), seqs.y"),
 ("selection includes test", "mer_cache/protocol/selection.py", "chosen = np.sort(np.concatenate([fold.train, fold.val]))\n    if len(np.intersect1d(chosen, fold.test)):", "chosen = np.sort(np.concatenate([fold.train, fold.val, fold.test]))\n    if False:"),
 ("layer on all clips", "mer_cache/pipelines/finetune_run.py", "train_clips = [kept[i] for i in selection_positions(fold) if", "train_clips = [kept[i] for i in range(len(kept)) if"),
 ("finetune val on test", "mer_cache/finetune/train.py", "val_rows = bank.rows_of(fold.val)", "val_rows = bank.rows_of(fold.test)"),
 ("metrics present only", "mer_cache/protocol/metrics.py", "    labels = list(range(n_classes))\n", "    labels = sorted(set(y_true.tolist()))\n"),
 ("guard skipped single cache", "mer_cache/pipelines/head_training.py", "        check_features([(seqs.fingerprint or {}).get(\"finetune\")]", "        0 and check_features([(seqs.fingerprint or {}).get(\"finetune\")]"),
 ("no weights record", "mer_cache/extract/extractor.py", "        finetune = training_record(trunk.weights_path)", "        finetune = None"),
 ("runtime not compared", "mer_cache/pipelines/head_runs.py", '_COMPARED = ("config", "data", "fingerprint", "fold_features", "runtime")', '_COMPARED = ("config", "data", "fingerprint", "fold_features")'),
]
tests = sys.argv[1:]
bad = 0
for name, path, old, new in M:
    p = pathlib.Path(path); s = p.read_text()
    if old not in s:  # the code moved on: update the mutant, never let it pass silently
        print(f"MISSING {name}: pattern not in {path}"); bad += 1; continue
    p.write_text(s.replace(old, new, 1))
    try:
        r = subprocess.run([".venv/bin/python", "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                           capture_output=True, text=True, timeout=900)
        print(("KILLED " if r.returncode else "SURVIVED ") + name, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "")
        bad += not r.returncode
    finally:
        p.write_text(s)
sys.exit(1 if bad else 0)
