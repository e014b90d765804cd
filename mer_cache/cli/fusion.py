"""``mer-cache fuse-runs``: late fusion of finished head runs on the same clips and folds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from mer_cache.cli.common import console, run_guarded


def fuse_runs_cmd(
    run: Annotated[list[Path], typer.Option("--run", help="A finished train-head run directory; give two or more (e.g. a ststnet run on a flow cache and a bilstm run on an embedding cache, same --protocol/--folds/--seed).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the fused metrics.json and predictions.csv.")] = None,
) -> None:
    """Average the runs' per-clip probabilities fold by fold and score the fusion like a run."""
    from mer_cache.pipelines import fuse_runs

    res = run_guarded(fuse_runs, run, out=out)
    m = res.metrics
    table = Table(title=f"{m['arch']} / {m['protocol']} ({len(m['folds'])} folds)")
    for col in ("scores", "clips", "accuracy", "UF1", "UAR"):
        table.add_column(col, justify="right")
    for f in m["folds"]:
        table.add_row(f"fold {f['fold']}", str(f["n"]), f"{f['accuracy']:.3f}", f"{f['uf1']:.3f}",
                      f"{f['uar']:.3f}")
    p = m["pooled"]
    table.add_row("[bold]pooled[/]", str(p["n"]), f"{p['accuracy']:.3f}", f"[bold]{p['uf1']:.3f}[/]",
                  f"[bold]{p['uar']:.3f}[/]")
    for name, s in m.get("per_dataset", {}).items():
        table.add_row(f"pooled {name}", str(s["n"]), f"{s['accuracy']:.3f}", f"{s['uf1']:.3f}",
                      f"{s['uar']:.3f}")
    console.print(table)
    console.print(f"rule: {m['rule']}" + (f"; written to {res.out}" if res.out else ""),
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("fuse-runs")(fuse_runs_cmd)
