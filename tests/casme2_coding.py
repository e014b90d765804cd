"""A generated stand-in for ``CASME2-coding-20190701.xlsx`` (the official file is licensed).

The CASME II licence restricts redistribution of the database and its coding file is part
of it, so the tests build a workbook in the same layout instead (REFERENCE.md section 5):
the real header names, blank columns C and G, the subject written as the text ``01``,
``Action Units`` cells that are integers (``12``) or text (``4+7``, ``L12``, ``R4+R10``),
``Objective Classes`` as integers, two empty extra sheets (``Sheet2``, ``Sheet3``), 255 rows
over 26 subjects with the official emotion counts, the apex written ``/`` (sub04 EP12_01f)
and, beyond the official file, empty apex cells (other CASME II versions have them and the
loader must treat them as not annotated). Frame numbers and the other clips are invented,
except the first row's onset/apex/offset (46/59/86), which the tests pin.
"""

from __future__ import annotations

import random
from pathlib import Path

import openpyxl

HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
          "Action Units", "Estimated Emotion", "Objective Classes"]
EMOTION_COUNTS = {"others": 99, "disgust": 63, "happiness": 32, "surprise": 28, "repression": 27,
                  "sadness": 4, "fear": 2}
N_SUBJECTS = 26
OBJECTIVE = {"happiness": 1, "surprise": 2, "disgust": 4, "repression": 5, "sadness": 5, "fear": 6,
             "others": 7}
AU_CELLS = (12, 4, "4+7", "L12", "R4+R10", "1+2", "L2+14", 14, "4+7+L10", "R14")
SLASH_APEX = ("04", "EP12_01f")  # the official file writes this apex as '/'
EMPTY_APEX = (("05", "EP05_02"), ("19", "EP09_01"))  # generated: apex cell left empty


def coding_rows(seed: int = 0) -> list[list]:
    """The 255 data rows, as the official sheet holds them (columns A..J)."""
    rng = random.Random(seed)
    labels = [lab for lab, n in EMOTION_COUNTS.items() for _ in range(n)]
    rng.shuffle(labels)
    labels.remove("happiness")
    labels.insert(0, "happiness")  # the pinned first row is a happiness clip
    fixed = {0: ("01", "EP02_01f", 46, 59, 86), 1: ("04", "EP12_01f", 30, "/", 60),
             2: EMPTY_APEX[0] + (12, None, 40), 3: EMPTY_APEX[1] + (80, None, 120)}
    subjects = [f"{i % N_SUBJECTS + 1:02d}" for i in range(len(labels))]
    used = {(f[0], f[1]) for f in fixed.values()}
    rows = []
    for i, label in enumerate(labels):
        if i in fixed:
            subject, name, onset, apex, offset = fixed[i]
        else:
            subject = subjects[i]
            while True:
                name = f"EP{rng.randint(1, 19):02d}_{rng.randint(1, 9):02d}{rng.choice(['', 'f'])}"
                if (subject, name) not in used:
                    break
            onset = rng.randint(1, 150)
            apex = onset + rng.randint(3, 30)
            offset = apex + rng.randint(3, 40)
        used.add((subject, name))
        rows.append([subject, name, None, onset, apex, offset, None, AU_CELLS[i % len(AU_CELLS)],
                     label, OBJECTIVE[label]])
    rows.sort(key=lambda r: (r[0], r[1]))
    return rows


def write_coding_xlsx(path: Path, rows: list[list] | None = None) -> Path:
    """Write the workbook: ``Sheet1`` with the header and rows, then empty ``Sheet2``/``Sheet3``."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(HEADER)
    for row in coding_rows() if rows is None else rows:
        ws.append(row)
    wb.create_sheet("Sheet2")
    wb.create_sheet("Sheet3")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
