"""`mer-cache synth`: write the built-in synthetic micro-expression dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from mer_cache.cli.common import SeedOpt, console, is_tty, run_guarded


def register(app: typer.Typer) -> None:
    """Add the top-level ``synth`` command to ``app``."""

    @app.command("synth")
    def synth(
        out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset root (created).")],
        subjects: Annotated[int, typer.Option("--subjects", help="Number of subjects.")] = 8,
        clips_per_class: Annotated[int, typer.Option(
            "--clips-per-class", help="Clips per class and subject (4 classes incl. non_micro).")] = 4,
        seed: SeedOpt = 0,
        layout: Annotated[str, typer.Option(
            "--layout", help="smic (HS folders, BMP), casme2 (JPG + coding xlsx) or raw (casme2 files, each face inside a 320x240 frame at a per-clip offset: extract with --face align).")] = "smic",
        contact_sheet: Annotated[Path | None, typer.Option(
            "--contact-sheet", help="Also draw onset/apex/difference of a few clips to this PNG.")] = None,
        overwrite: Annotated[bool, typer.Option(
            "--overwrite", help="Replace a synthetic dataset made with other options in --out.")] = False,
    ) -> None:
        """Generate synthetic micro-expression clips in a real dataset layout."""
        from mer_cache.synth import SynthConfig, generate_dataset
        from mer_cache.synth.contact_sheet import write_contact_sheet

        config = run_guarded(SynthConfig, subjects=subjects, clips_per_class=clips_per_class,
                             seed=seed, layout=layout.lower())
        with Progress(console=console, transient=True, disable=not is_tty()) as bar:
            task = bar.add_task("rendering clips", total=None)
            summary = run_guarded(
                generate_dataset, out, config=config, overwrite=overwrite,
                progress=lambda done, total: bar.update(task, completed=done, total=total))
        table = Table(title=f"synthetic {summary.layout} dataset", show_header=False)
        table.add_row("root", str(summary.root))
        table.add_row("subjects", str(summary.n_subjects))
        table.add_row("clips", ", ".join(f"{k} {v}" for k, v in summary.clips_per_label.items())
                      + f" (total {summary.n_clips})")
        table.add_row("frames", str(summary.n_frames))
        table.add_row("ground truth", str(summary.manifest))
        if summary.reused:
            table.add_row("note", "same options as the existing dataset: kept as it is")
        console.print(table)
        if contact_sheet is not None:
            png = run_guarded(write_contact_sheet, summary.root, contact_sheet)
            console.print(f"contact sheet: {png}")

