"""The on-disk layouts synthetic clips are written in, so the real dataset loaders read them.

- ``smic``: SMIC-HS folders, labels from folder names (SMIC release layout):
  ``HS/s1/micro/{negative,positive,surprise}/s1_ne_01/image069281.bmp`` and
  ``HS/s1/non_micro/s1_no_01/image...bmp``. SMIC-HS has no onset/apex/offset annotation;
  ``synth.json`` carries them.
- ``casme2``: ``CASME2_RAW_selected/sub01/EP01_01/img46.jpg`` plus an annotation workbook in
  the columns of ``CASME2-coding-20190701.xlsx``: ``Subject, Filename, (blank), OnsetFrame,
  ApexFrame, OffsetFrame, (blank), Action Units, Estimated Emotion, Objective Classes``,
  subject written ``01`` as text, AUs ``4+15``. Non-micro clips become ``others`` rows; the
  format has no empty window, so they get the nominal window first/middle/last frame and an
  empty Action Units cell.

Frame numbers do not start at 1 (real clips are cut out of longer recordings), which checks
that loaders turn file numbers into 0-based indices.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LAYOUTS = ("smic", "casme2", "raw")  # raw: casme2 folders, faces in larger frames (synth.raw)

SMIC_CODES = {"negative": "ne", "positive": "po", "surprise": "sur", "non_micro": "no"}

# CASME II words for the synthetic classes; negative alternates disgust / repression,
# the two negative emotions CASME II has most of (63 and 27 clips).
CASME2_EMOTIONS = {"negative": ("disgust", "repression"), "positive": ("happiness",),
                   "surprise": ("surprise",), "non_micro": ("others",)}
# Objective Classes most used with each emotion in CASME-coding-20190701.xlsx
# (happiness 1, surprise 2, disgust 4, repression 5, others 7).
CASME2_OBJECTIVE = {"happiness": 1, "surprise": 2, "disgust": 4, "repression": 5, "others": 7}
CASME2_XLSX = "CASME2-coding-synth.xlsx"
CASME2_HEADER = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion", "Objective Classes")

JPEG_QUALITY = 95


@dataclass(frozen=True)
class ClipSlot:
    """Where and under which names one clip is written."""

    clip_id: str  # as the loaders name it: smic/s1/s1_ne_01, casme2/sub01/EP01_01
    subject: str  # as the dataset writes it: s1, 01
    folder: str  # relative to the output root, '/' separated
    label: str  # the dataset's raw label: folder name (SMIC) or emotion word (CASME II)
    first_number: int  # file number of frame index 0
    prefix: str
    digits: int  # zero padding of the file number (0 = none)
    suffix: str

    def frame_name(self, index: int) -> str:
        number = self.first_number + index
        return f"{self.prefix}{number:0{self.digits}d}{self.suffix}" if self.digits else (
            f"{self.prefix}{number}{self.suffix}")


def smic_slot(subject: int, label: str, take: int, first_number: int) -> ClipSlot:
    """Slot of the ``take``-th (1-based) clip of ``label`` for SMIC subject ``s<subject>``."""
    sid = f"s{subject}"
    name = f"{sid}_{SMIC_CODES[label]}_{take:02d}"
    group = "non_micro" if label == "non_micro" else f"micro/{label}"
    return ClipSlot(f"smic/{sid}/{name}", sid, f"HS/{sid}/{group}/{name}", label,
                    first_number, "image", 6, ".bmp")


def casme2_slot(subject: int, episode: int, emotion: str, first_number: int) -> ClipSlot:
    """Slot of clip ``EP<episode>_01`` of CASME II subject ``sub<subject>``."""
    sid = f"{subject:02d}"
    name = f"EP{episode:02d}_01"
    return ClipSlot(f"casme2/sub{sid}/{name}", sid, f"CASME2_RAW_selected/sub{sid}/{name}",
                    emotion, first_number, "img", 0, ".jpg")


def write_frames(root: Path, slot: ClipSlot, frames: np.ndarray) -> list[Path]:
    """Write ``frames`` (T, H, W, 3) uint8 RGB into the slot's folder; return the paths."""
    folder = root / slot.folder
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = folder / slot.frame_name(i)
        img = Image.fromarray(frame, "RGB")
        if slot.suffix == ".jpg":
            img.save(path, quality=JPEG_QUALITY, subsampling=0)
        else:
            img.save(path)
        paths.append(path)
    return paths


_FIXED_ZIP_TIME = (2019, 7, 1, 0, 0, 0)
_FIXED_ISO = "2019-07-01T00:00:00Z"


def _deterministic_zip(data: bytes) -> bytes:
    """Rewrite an xlsx with fixed timestamps, so the same rows give the same bytes.

    openpyxl stamps docProps/core.xml and every zip member with the time of saving."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", _FIXED_ISO.encode(), body)
            member = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, body)
    return out.getvalue()


def write_casme2_workbook(path: Path, rows: list[tuple]) -> Path:
    """Write the CASME II-style annotation workbook.

    Parameters
    ----------
    path : Path
        Output ``.xlsx`` path.
    rows : list of tuple
        ``(subject, filename, onset_frame, apex_frame, offset_frame, action_units,
        emotion, objective_class)`` per clip, in the order to write.
    """
    from openpyxl import Workbook  # only this layout needs it

    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(list(CASME2_HEADER))
    for subject, filename, onset, apex, offset, aus, emotion, objective in rows:
        ws.append([subject, filename, None, onset, apex, offset, None, aus, emotion, objective])
        ws.cell(row=ws.max_row, column=1).number_format = "@"  # subjects are text: '01'
    wb.create_sheet("Sheet2")
    wb.create_sheet("Sheet3")
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(_deterministic_zip(buf.getvalue()))
    return path


def au_cell(aus: tuple[str, ...]):
    """Action Units cell as CASME II writes it: an int for one AU, '4+15' for several."""
    if not aus:
        return None
    return int(aus[0]) if len(aus) == 1 else "+".join(aus)
