"""A contact sheet of a synthetic dataset: onset, apex and their amplified difference.

One row per class (read back from the files on disk through ``synth.json``), so a reader
sees what the data looks like and that the motion sits inside the recorded AU regions
(drawn as boxes on the difference). Uses matplotlib when installed, PIL otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mer_cache.catalogue.clip import list_frames
from mer_cache.errors import DatasetError
from mer_cache.synth.actions import CLASSES

DIFF_GAIN = 8.0  # |apex - onset| x 8: a 3 px micro-movement changes pixels by a few levels


def _pick_clips(manifest: dict, n_clips: int) -> list[dict]:
    """One clip per class in turn, each from another subject where possible.

    Clips without a blink come first: a blink changes more pixels than a micro-expression
    and would hide the AU motion the sheet is meant to show."""
    ordered = sorted(manifest["clips"], key=lambda x: bool(x["blinks"]))
    by_class = {c: [x for x in ordered if x["class"] == c] for c in CLASSES}
    picked, used = [], set()
    for i in range(n_clips):
        pool = by_class[CLASSES[i % len(CLASSES)]]
        fresh = [c for c in pool if c["subject"] not in used and c not in picked]
        choice = (fresh or [c for c in pool if c not in picked] or [None])[0]
        if choice is not None:
            picked.append(choice)
            used.add(choice["subject"])
    return picked


def _panels(root: Path, clip: dict):
    folder = root / clip["path"]
    frames = list_frames(folder) if folder.is_dir() else ()
    if len(frames) != clip["n_frames"]:
        raise DatasetError(f"{folder} holds {len(frames)} frames but synth.json lists "
                           f"{clip['n_frames']}; regenerate it with `mer-cache synth --overwrite`.")
    onset = clip["onset"] if clip["onset"] is not None else 0
    apex = clip["apex"] if clip["apex"] is not None else clip["n_frames"] // 2

    def load(index):
        return np.asarray(Image.open(frames[index]).convert("RGB"), dtype=np.float32)

    a, b = load(onset), load(apex)
    diff = np.clip(np.abs(b - a).mean(axis=2) * DIFF_GAIN, 0, 255)
    return a.astype(np.uint8), b.astype(np.uint8), diff.astype(np.uint8), onset, apex


def write_contact_sheet(root: Path, png: Path, *, n_clips: int = 4) -> Path:
    """Draw ``n_clips`` clips of the synthetic dataset at ``root`` into ``png``.

    Raises
    ------
    DatasetError
        When ``root`` has no ``synth.json`` or a listed frame is missing.
    """
    root, png = Path(root), Path(png)
    manifest_path = root / "synth.json"
    if not manifest_path.is_file():
        raise DatasetError(f"{root} has no synth.json; it is not a synthetic dataset. Run "
                           "`mer-cache synth --out {root}` first.")
    manifest = json.loads(manifest_path.read_text())
    rows = [(clip, *_panels(root, clip)) for clip in _pick_clips(manifest, n_clips)]
    png.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
    except ImportError:
        _draw_pil(rows, png)
    else:
        matplotlib.use("Agg")
        _draw_matplotlib(rows, png)
    return png


def _title(clip: dict) -> str:
    aus = clip["au_string"] or "no AU"
    return f"{clip['clip_id']}  {clip['class']} ({aus})"


def _draw_matplotlib(rows, png: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, axes = plt.subplots(len(rows), 3, figsize=(6.3, 2.2 * len(rows)), squeeze=False)
    for r, (clip, onset_img, apex_img, diff, onset, apex) in enumerate(rows):
        panels = ((onset_img, f"onset (frame {onset})"), (apex_img, f"apex (frame {apex})"),
                  (diff, f"|apex - onset| x {DIFF_GAIN:g}"))
        for c, (img, label) in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(img, cmap="inferno" if c == 2 else None, vmin=0, vmax=255)
            ax.set_title(label, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        for au, (x0, y0, x1, y1) in clip["au_regions"].items():
            axes[r, 2].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor="cyan", linewidth=0.7))
            axes[r, 2].text(x0, y0 - 1, f"AU{au}", color="cyan", fontsize=5)
        axes[r, 0].set_ylabel(_title(clip), fontsize=6)
    fig.tight_layout()
    fig.savefig(png, dpi=110, metadata={"Software": None})
    plt.close(fig)
    _shrink(png)


def _shrink(png: Path) -> None:
    """Re-save with a 256-colour palette: sensor noise makes true-colour PNGs large."""
    with Image.open(png) as img:
        small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def _draw_pil(rows, png: Path) -> None:
    size, pad, head = 128, 4, 14
    sheet = Image.new("RGB", (3 * size + 4 * pad, len(rows) * (size + head + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (clip, onset_img, apex_img, diff, _onset, _apex) in enumerate(rows):
        y = pad + r * (size + head + pad)
        draw.text((pad, y), _title(clip), fill="black")
        diff_rgb = np.stack([diff, (diff * 0.5).astype(np.uint8), np.zeros_like(diff)], -1)
        for c, img in enumerate((onset_img, apex_img, diff_rgb)):
            sheet.paste(Image.fromarray(img), (pad + c * (size + pad), y + head))
        ox = pad + 2 * (size + pad)
        for x0, y0, x1, y1 in clip["au_regions"].values():
            draw.rectangle((ox + x0, y + head + y0, ox + x1 - 1, y + head + y1 - 1), outline="cyan")
    sheet.save(png, optimize=True)
    _shrink(png)
