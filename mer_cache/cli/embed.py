"""``mer-cache embed``: one embedding per image file, saved as an ``(N, D)`` ``.npy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from mer_cache.cli.common import LayerOpt, WeightsOpt, console, run_guarded

ResizeOpt = Annotated[Literal["stretch", "center-crop"], typer.Option("--resize-mode", help="stretch: whole image to the input size; center-crop: the VGGFace2 evaluation crop.")]
TrunkDefaultOpt = Annotated[str, typer.Option("--trunk", "-t", help="Trunk name (see `mer-cache weights list`), or tv:<torchvision name>.")]


def embed_cmd(
    images: Annotated[list[Path], typer.Argument(help="Image files to embed, in output order.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .npy file: (N, D) float32.")],
    trunk: TrunkDefaultOpt = "fer-minixception",
    weights: WeightsOpt = None,
    layer: LayerOpt = None,
    resize_mode: ResizeOpt = "stretch",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per forward pass.")] = 64,
    device: Annotated[str, typer.Option("--device", help="Torch device: cpu, cuda, cuda:1, ...")] = "cpu",
    face: Annotated[Literal["align", "none"], typer.Option("--face", help="align: find each image's face and warp it to the canonical crop first (needs `mer-cache faces fetch`); none: the whole image.")] = "none",
) -> None:
    """Embed image files with a trunk and write one row per image to a .npy file."""
    from mer_cache.embed import embed_to_npy

    emb = run_guarded(embed_to_npy, images, out=out, trunk=trunk, weights=weights, layer=layer,
                      resize_mode=resize_mode, batch_size=batch_size, device=device, face=face)
    console.print(f"Wrote {out}: {emb.shape[0]} x {emb.shape[1]} float32 ({trunk}).", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("embed")(embed_cmd)
