"""`mer-cache extract --features flow`: the CLI side of a flow-cache extraction.

``cli/extract.py`` only dispatches here; the work is :func:`mer_cache.flow.run_flow_extract_job`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mer_cache.cli.common import (
    console, err_console, fail, parse_dataset_options, print_failed, run_guarded,
)
from mer_cache.errors import ConfigError


def extract_flow(*, dataset: str, root: Path, out: Path, dataset_option: list[str],
                 ignored: dict[str, object], face: str = "auto") -> None:
    """Write a flow cache (TV-L1 onset -> apex, strain, 28x28) and print what was done."""
    from mer_cache.pipelines import FlowConfig, run_flow_extract_job

    given = [name for name, value in ignored.items() if value is not None]
    if given:
        fail(ConfigError(f"{', '.join(given)} cannot be combined with --features flow: flow "
                         "features use no trunk, batches, device or stored-dtype choice (TV-L1 "
                         "between the onset and apex frames on the CPU, float32, parameters in "
                         "the cache fingerprint). Drop them."))
    options = run_guarded(parse_dataset_options, dataset_option)
    with Progress(TextColumn("[bold]flow[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} clips"),
                  TimeRemainingColumn(), console=err_console, transient=False) as bar:
        task = bar.add_task("flow", total=None)
        result = run_guarded(run_flow_extract_job, dataset, root, out, dataset_options=options,
                             config=FlowConfig(), face=face,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))
    table = Table(title=f"Flow extraction into {result.path} ({result.status})", show_header=False)
    for key, value in (("clips", result.n_clips), ("already done before this run", result.n_already_done),
                       ("written now", result.n_written),
                       ("apex estimated (not annotated)", result.n_estimated_apex),
                       ("failed", len(result.failed)), ("seconds", f"{result.seconds:.1f}"),
                       ("clips/s", f"{result.clips_per_s:.2f}")):
        table.add_row(key, str(value))
    console.print(table)
    if result.failed:
        console.print(f"[red]{len(result.failed)} clip(s) failed[/] (rerun the same command to retry them):")
        print_failed(result.failed)
        raise typer.Exit(1)
    console.print(f"Flow cache complete: {result.complete}. Train a flow head with "
                  f"`mer-cache train-head --cache {result.path} --arch ststnet ...`.", highlight=False)


def print_flow_info(cache: Path, *, as_json: bool) -> None:
    """`mer-cache cache info` of a flow cache: parameters, status, and the frames per clip."""
    import json

    from mer_cache.cache import open_flow_cache

    flow = run_guarded(open_flow_cache, cache, require_complete=False)
    data = flow.info()
    used = flow.frames_used()
    data["frames_used"] = {c.clip_id: {"onset": u.onset, "apex": u.apex, "apex_source": u.apex_source}
                           for c, u in zip(flow.clips, used)}
    if as_json:
        console.print_json(json.dumps(data, default=str))
        return
    fp = data["fingerprint"]
    t = Table(title=f"Flow cache {cache}", show_header=False)
    for key in ("method", "frame_size", "out_size", "interpolation", "apex_rule", "dtype",
                "opencv_version", "catalogue_sha256"):
        t.add_row(key, str(fp.get(key)))
    t.add_row("tvl1", json.dumps(fp.get("tvl1")))
    t.add_row("shape per clip", " x ".join(map(str, data["shape"])) + f" ({', '.join(flow.channels)})")
    s = data["status"]
    t.add_row("status", f"{s['n_done']} done, {s['n_failed']} failed of {s['n_clips']}")
    t.add_row("apex", f"{data['apex_annotated']} annotated, {data['apex_estimated']} estimated")
    console.print(t)
    c = Table(title="Frames used (0-based)")
    for col in ("clip", "label", "onset", "apex", "apex source"):
        c.add_column(col)
    for clip, u in zip(flow.clips, used):
        c.add_row(clip.clip_id, clip.label, str(u.onset), str(u.apex), u.apex_source)
    console.print(c)
