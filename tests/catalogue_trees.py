"""Builders of tiny dataset trees (8x8 frames) and annotation files for the catalogue tests."""

from __future__ import annotations

from pathlib import Path

import openpyxl
from PIL import Image

CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion", "Objective Classes"]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def write_frames(folder: Path, names: list[str]) -> list[Path]:
    """Tiny gray images named ``names`` (suffix decides the format)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(names):
        path = folder / name
        Image.new("L", (8, 8), color=(i * 17) % 256).save(path)
        out.append(path)
    return out


def write_xlsx(path: Path, header: list, rows: list[list], *, preamble: list[list] | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in preamble or []:
        ws.append(row)
    ws.append(header)
    for row in rows:
        ws.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def make_smic(root: Path, *, wrapper: str | None = None, modality: str = "HS",
              clips: dict[str, list[tuple[str, str]]] | None = None, n_frames: int = 3) -> Path:
    """SMIC tree; ``clips`` maps subject -> [(label or 'non_micro', clip folder)]."""
    clips = clips or {"s1": [("negative", "s1_ne_01"), ("positive", "s1_po_01"), ("non_micro", "s1_no_01")],
                      "s2": [("surprise", "s2_sur_01")]}
    base = root / wrapper / modality if wrapper else root / modality
    for subject, items in clips.items():
        for label, name in items:
            group = base / subject / ("non_micro" if label == "non_micro" else f"micro/{label}")
            write_frames(group / name, [f"image{i:03d}.bmp" for i in range(1, n_frames + 1)])
    return root


def make_casme2(root: Path, rows: list[list], *, folder: str = "CASME2_RAW_selected",
                prefix: str = "img", skip: set[tuple[str, str]] = frozenset()) -> Path:
    """CASME II tree for annotation ``rows`` (official columns) plus the xlsx in ``root``.

    Each clip gets frames numbered onset-1 .. offset+1 when short, else the annotated ones
    and their neighbours, so the tree stays small for the real 255-row file.
    """
    write_xlsx(root / "CASME2-coding-test.xlsx", CASME2_HEADER, rows)
    for row in rows:
        subject, name, onset, apex, offset = f"sub{row[0]}", row[1], row[3], row[4], row[5]
        if (subject, name) in skip:
            continue
        numbers = {n for v in (onset, apex, offset) if isinstance(v, int) for n in (v - 1, v, v + 1)}
        write_frames(root / folder / subject / name, [f"{prefix}{n}.jpg" for n in sorted(numbers)])
    return root


def official_casme2_rows() -> list[list]:
    """The rows of the generated stand-in for the official CASME II coding file."""
    from casme2_coding import coding_rows

    return coding_rows()
