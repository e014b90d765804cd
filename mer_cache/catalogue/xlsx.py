"""Reading the official annotation spreadsheets (CASME II, SAMM, CAS(ME)^3, SMIC-E).

The files share one shape, a header row then one row per clip, but each has quirks the
loaders must survive (REFERENCE.md section 5): SAMM puts 12 preamble rows before the
header, CASME II has blank columns and an apex written ``/``, SMIC-E ends with free-text
rows, and subjects written ``006`` may load as the integer 6. This module finds the header
by its content, maps the columns a loader asks for by name, and reports the quirks as
warnings in a :class:`~mer_cache.catalogue.problems.ProblemLog`.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mer_cache.catalogue.problems import ANNOTATION_FILE, ANNOTATION_QUIRK, ProblemLog
from mer_cache.errors import DatasetError

# SAMM's header sits on row 13; scanning a little further keeps us safe for other versions.
_HEADER_SCAN_ROWS = 40


def _norm_header(value: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower()) if value is not None else ""


@dataclass(frozen=True)
class AnnotationRow:
    """One data row: canonical column name -> cell value, and its 1-based sheet row."""

    values: dict[str, object]
    row: int
    sheet: str = ""  # set when rows come from several sheets (``all_sheets=True``)

    def __getitem__(self, key: str) -> object:
        return self.values.get(key)


def read_annotation(
    path: Path,
    *,
    columns: dict[str, tuple[str, ...]],
    optional: dict[str, tuple[str, ...]] | None = None,
    problems: ProblemLog,
    all_sheets: bool = False,
) -> list[AnnotationRow]:
    """Read the clip rows of an annotation spreadsheet.

    Parameters
    ----------
    path : Path
        The ``.xlsx`` file.
    columns : dict
        Required columns: canonical name -> accepted header spellings (compared without
        case, spaces or punctuation, so ``Onset Frame`` matches ``OnsetFrame``).
    optional : dict, optional
        Columns read when present.
    problems : ProblemLog
        Receives a warning for each skipped non-data row (SMIC-E's trailing notes).
    all_sheets : bool
        Read every sheet that has the header (one table per section, as some CASME copies
        are split), instead of the first; rows then carry their sheet name.

    Returns
    -------
    list of AnnotationRow
        Rows whose first two required columns (subject and file name) are both filled.

    Raises
    ------
    DatasetError
        When the file cannot be opened or no sheet has a header with every required column
        (the message names the missing columns and the file).
    """
    import openpyxl

    optional = optional or {}
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DatasetError(
            f"Cannot read the annotation file {path}: {exc}. It must be the dataset's .xlsx "
            "file as distributed; re-download or re-export it."
        ) from None
    tables: list[tuple[str, list[AnnotationRow]]] = []
    try:
        best: tuple[int, str, list[str]] = (-1, "", [])
        for ws in wb.worksheets:
            rows = list(ws.iter_rows(values_only=True))
            found = _find_header(rows, columns)
            if found is None:
                matched, seen = _best_partial(rows, columns)
                if matched > best[0]:
                    best = (matched, ws.title, seen)
                continue
            header_idx, mapping = found
            for name, spellings in optional.items():
                col = _match_column(rows[header_idx], spellings)
                if col is not None:
                    mapping[name] = col
            data = _data_rows(path, rows, header_idx, mapping, list(columns)[:2], problems)
            if not data:
                # otherwise the loader would go on and blame the (unnamed) frame folders
                raise DatasetError(
                    f"The annotation file {path} has a header row (row {header_idx + 1} of sheet "
                    f"'{ws.title}') but no clip rows below it. Use the dataset's complete "
                    "annotation file.")
            tables.append((ws.title, data))
            if not all_sheets:
                break
    finally:
        wb.close()
    if len(tables) == 1:
        return tables[0][1]
    if tables:
        return [AnnotationRow(r.values, r.row, title) for title, rows in tables for r in rows]
    missing = [
        name for name, spellings in columns.items()
        if not any(_norm_header(s) in {_norm_header(h) for h in best[2]} for s in spellings)
    ]
    want = ", ".join(f"'{columns[m][0]}'" for m in missing) or ", ".join(f"'{v[0]}'" for v in columns.values())
    seen = ", ".join(f"'{h}'" for h in best[2] if h) or "none"
    raise DatasetError(
        f"The annotation file {path} has no column {want} (looked for a header row with "
        f"{', '.join(repr(v[0]) for v in columns.values())} in the first {_HEADER_SCAN_ROWS} "
        f"rows of every sheet; the closest header, in sheet '{best[1]}', has {seen}). "
        "Use the dataset's official annotation file, or rename the column to the expected name."
    )


def _match_column(header: tuple, spellings: tuple[str, ...]) -> int | None:
    wanted = {_norm_header(s) for s in spellings}
    for i, cell in enumerate(header):
        if _norm_header(cell) in wanted:
            return i
    return None


def _find_header(rows: list[tuple], columns: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, int]] | None:
    for idx, row in enumerate(rows[:_HEADER_SCAN_ROWS]):
        mapping = {name: _match_column(row, spellings) for name, spellings in columns.items()}
        if all(col is not None for col in mapping.values()):
            return idx, mapping  # type: ignore[return-value]
    return None


def _best_partial(rows: list[tuple], columns: dict[str, tuple[str, ...]]) -> tuple[int, list[str]]:
    best = (0, [])
    for row in rows[:_HEADER_SCAN_ROWS]:
        n = sum(_match_column(row, s) is not None for s in columns.values())
        if n > best[0]:
            best = (n, [str(c) for c in row if c is not None])
    return best


def _data_rows(path: Path, rows: list[tuple], header_idx: int, mapping: dict[str, int],
               keys: list[str], problems: ProblemLog) -> list[AnnotationRow]:
    out: list[AnnotationRow] = []
    for idx in range(header_idx + 1, len(rows)):
        row = rows[idx]
        if all(_blank(c) for c in row):
            continue
        values = {name: (row[col] if col < len(row) else None) for name, col in mapping.items()}
        if any(_blank(values[k]) for k in keys):
            # SMIC-E ends its table with free-text notes; keep going, tell the user
            text = " ".join(str(c) for c in row if not _blank(c))[:80]
            problems.warning(ANNOTATION_QUIRK, path,
                             f"row {idx + 1} is not a clip row (no subject or file name) and was "
                             f"skipped: '{text}'")
            continue
        out.append(AnnotationRow(values, idx + 1))
    return out


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def normalise_subject(value: object, *, width: int) -> str:
    """Subject id as text, zero-padded when numeric (``6`` -> ``'006'`` for width 3)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text.zfill(width) if text.isdigit() else text


def parse_frame(value: object, *, what: str, path: Path, row: int, problems: ProblemLog,
                clip_id: str | None = None) -> int | None:
    """An annotated frame number, or None (with a warning) for ``/``, blank or text cells.

    CASME II writes one apex as ``/`` (sub04 EP12_01f) and leaves others empty; SAMM uses
    ``-1`` for an unknown apex. These are known quirks, so they warn instead of failing.
    """
    if isinstance(value, bool):
        value = None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int) and value >= 0:
        return value
    shown = "empty" if _blank(value) else repr(value)
    problems.warning(ANNOTATION_QUIRK, path,
                     f"row {row}: {what} is {shown}; it is treated as not annotated.",
                     clip_id=clip_id)
    return None


_DATE = re.compile(r"(?<!\d)((?:19|20)\d{6})(?!\d)")  # 20190701 in CASME2-coding-20190701.xlsx


def find_annotation(root: Path, *, patterns: tuple[str, ...], dataset: str, given: Path | str | None,
                    problems: ProblemLog | None = None) -> Path:
    """The annotation file: ``given`` if set, else the first match of ``patterns``.

    Searches ``root``, its subfolders two levels down, and its parent (users often point
    the root at the frame folder that sits next to the xlsx). When one place holds several
    matches (``CASME2-coding-20140508.xlsx`` and ``-20190701.xlsx``), the one with the newest
    date in its name is read, with a warning; without dates to tell them apart it refuses.
    ``problems`` receives a note naming the file read (and that warning).

    Raises
    ------
    DatasetError
        When ``given`` does not exist, nothing matches, or several undated files match.
    """
    if given is not None:
        path = Path(given)
        if not path.is_file():
            raise DatasetError(
                f"The {dataset} annotation file {path} does not exist. Pass the path of the "
                "official .xlsx file (CLI: -o annotation=PATH)."
            )
        _note_file(problems, path, dataset, "given with -o annotation")
        return path
    places = [root, *sorted(p for p in root.iterdir() if p.is_dir()), root.parent]
    places += sorted(q for p in places[1:-1] for q in p.iterdir() if q.is_dir())
    for pattern in patterns:
        for place in places:
            hits = sorted(p for p in place.glob(pattern) if not p.name.startswith("~$"))
            if hits:
                chosen = _newest(hits, dataset)
                if len(hits) > 1 and problems is not None:
                    problems.warning(ANNOTATION_FILE, chosen,
                                     f"{len(hits)} {dataset} annotation files in {place} "
                                     f"({', '.join(h.name for h in hits)}); reading the newest, "
                                     f"{chosen.name}. Pass -o annotation=PATH to read another, or "
                                     "move the others away.")
                _note_file(problems, chosen, dataset, "found")
                return chosen
    raise DatasetError(
        f"No {dataset} annotation file found in {root} (looked for {', '.join(patterns)} in "
        "the root, two levels below it and its parent). Put the official .xlsx file there "
        "or pass its path (CLI: -o annotation=PATH)."
    )


def _newest(hits: list[Path], dataset: str) -> Path:
    """The hit with the newest YYYYMMDD date in its name; refuse when that is ambiguous."""
    if len(hits) == 1:
        return hits[0]
    dates = {h: _DATE.findall(h.name) for h in hits}
    if all(len(d) == 1 for d in dates.values()) and len({d[0] for d in dates.values()}) == len(hits):
        return max(hits, key=lambda h: dates[h][0])
    raise DatasetError(
        f"Several {dataset} annotation files and no date in their names to tell which is newest: "
        f"{', '.join(str(h) for h in hits)}. Pass the one to read with -o annotation=PATH, or move "
        "the others away.")


def _note_file(problems: ProblemLog | None, path: Path, dataset: str, how: str) -> None:
    if problems is not None:
        problems.note(ANNOTATION_FILE, path, f"{dataset} annotations read from this file ({how}).")
