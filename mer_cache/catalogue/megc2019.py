"""MEGC2019 composite: SMIC HS + CASME II + SAMM clips joined by the published list.

The composite (REFERENCE.md section 5) has 442 clips in three classes. Its CASME II part
cannot be rebuilt from the 2019 xlsx, so the published list shipped as package data
(``data/megc2019_composite_442.csv``: ``dataset, sub, filename_o, label`` with 0 negative,
1 positive, 2 surprise) decides which clips are in and their labels. Each clip keeps its
source dataset and clip id (so caches of the single datasets are reused) and gets
``attrs["composite"] = "megc2019"``. The list's quirks: SMIC is written ``s01``/``s01_ne_01``
where the folders say ``s1``/``s1_ne_01``; CASME II subjects are ``sub01``. A copy of the
list without its header row (widespread) is read by position.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from mer_cache.catalogue.casme2 import load_casme2
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import MISSING_FOLDER, UNKNOWN_LABEL, ProblemLog
from mer_cache.catalogue.samm import load_samm
from mer_cache.catalogue.smic import load_smic
from mer_cache.errors import DatasetError

COMPOSITE_FILE = "megc2019_composite_442.csv"
LABEL_NAMES = {"0": "negative", "1": "positive", "2": "surprise"}
_PARTS = ("smic", "casme2", "samm")
_SMIC_NAME = re.compile(r"^s0*(\d+)_([a-z]+)_0*(\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class CompositeEntry:
    dataset: str
    subject: str
    filename: str
    label: str
    line: int


def read_composite(path: Path | str | None = None) -> list[CompositeEntry]:
    """Entries of the composite list (the shipped one unless ``path`` is given)."""
    if path is None:
        text = resources.files("mer_cache.catalogue").joinpath("data", COMPOSITE_FILE).read_text("utf-8")
        where = COMPOSITE_FILE
    else:
        try:
            text = Path(path).read_text("utf-8-sig")
        except OSError as exc:
            raise DatasetError(f"Cannot read the composite list {path}: {exc}.") from None
        where = str(path)
    lines = text.splitlines()
    need = ("dataset", "sub", "filename_o", "label")
    first = next(csv.reader(lines[:1]), [])
    if first and first[0].strip().lower() in _PARTS:
        # the widespread headerless copy: the same columns in the same order, no header row
        rows = [dict(zip(need, r)) for r in csv.reader(lines)]
        start = 1
        short = [i for i, r in enumerate(rows, start=1) if len(r) < len(need) and any(r.values())]
        if short:
            raise DatasetError(f"The composite list {where} has no header and line {short[0]} has fewer "
                               f"than the 4 columns {', '.join(need)}; fix the line.")
    else:
        reader = csv.DictReader(lines)
        if not set(need) <= set(reader.fieldnames or []):
            raise DatasetError(
                f"The composite list {where} needs the columns {', '.join(need)} (as a header row, "
                f"or as the first 4 columns of a headerless list whose lines start with "
                f"{'/'.join(_PARTS)}); its first line has {', '.join(reader.fieldnames or []) or 'nothing'}.")
        rows, start = list(reader), 2
    return [CompositeEntry(r["dataset"].strip().lower(), r["sub"].strip(), r["filename_o"].strip(),
                           r["label"].strip(), line) for line, r in enumerate(rows, start=start)
            if any((v or "").strip() for v in r.values())]


def _key_of_entry(e: CompositeEntry) -> tuple | None:
    if e.dataset == "smic":
        m = _SMIC_NAME.match(e.filename)
        return (int(m[1]), m[2].lower(), int(m[3])) if m else None
    digits = re.sub(r"^sub", "", e.subject, flags=re.IGNORECASE)
    if e.dataset == "casme2":
        return ("sub" + digits.zfill(2), e.filename)
    return (digits.zfill(3), e.filename)


def _key_of_clip_id(dataset: str, clip_id: str) -> tuple | None:
    _, subject, name = clip_id.split("/", 2)
    if dataset == "smic":
        m = _SMIC_NAME.match(name)
        return (int(m[1]), m[2].lower(), int(m[3])) if m else None
    return (subject, name)


def _find_part(root: Path | None, prefixes: tuple[str, ...]) -> Path | None:
    if root is None or not root.is_dir():
        return None
    for p in sorted(root.iterdir()):
        flat = re.sub(r"[^a-z0-9]", "", p.name.lower())
        if p.is_dir() and flat.startswith(prefixes):
            return p
    return None


def load_megc2019(
    root: Path | str | None,
    *,
    problems: ProblemLog,
    smic_root: Path | str | None = None,
    casme2_root: Path | str | None = None,
    samm_root: Path | str | None = None,
    composite: Path | str | None = None,
) -> list[Clip]:
    """The 442 clips of the MEGC2019 composite, labelled negative/positive/surprise.

    Parameters
    ----------
    root : Path or None
        A folder holding the three datasets (sub-folders named like ``SMIC``, ``CASME2``,
        ``SAMM``); ignored for parts whose root is given explicitly.
    smic_root, casme2_root, samm_root : Path, optional
        Roots of the three datasets, as their own loaders take them (SMIC: HS is used).
    composite : Path, optional
        Another composite list in the same CSV format.
    """
    base = Path(root).expanduser() if root is not None else None
    parts = {
        "smic": (smic_root, ("smic",), lambda r, log: load_smic(r, problems=log, include_non_micro=False)),
        "casme2": (casme2_root, ("casme2", "casmeii"), lambda r, log: load_casme2(r, problems=log)),
        "samm": (samm_root, ("samm",), lambda r, log: load_samm(r, problems=log)),
    }
    entries = read_composite(composite)
    clips_by_key: dict[tuple[str, tuple], Clip] = {}
    reported: set[tuple[str, tuple]] = set()
    roots: dict[str, Path] = {}
    for name, (given, prefixes, loader) in parts.items():
        part_root = Path(given).expanduser() if given is not None else _find_part(base, prefixes)
        if part_root is None:
            raise DatasetError(
                f"The MEGC2019 composite needs a {name} root: none was given and no folder named "
                f"like {prefixes[0].upper()} is in {base}. Pass it with {name}_root=PATH "
                f"(CLI: -o {name}_root=PATH)."
            )
        roots[name] = part_root
        log = ProblemLog()
        for clip in loader(part_root, log):
            clips_by_key[(name, _key_of_clip_id(name, clip.clip_id))] = clip
        wanted = {(name, _key_of_entry(e)) for e in entries if e.dataset == name}
        for p in log.items:
            key = (name, _key_of_clip_id(name, p.clip_id)) if p.clip_id else None
            if key is None or key in wanted:  # problems of clips outside the composite don't matter
                problems.extend([p])
                if key is not None and p.severity == "fatal":
                    reported.add(key)
    out: list[Clip] = []
    where = str(composite or COMPOSITE_FILE)
    for e in entries:
        key = (e.dataset, _key_of_entry(e))
        if e.label not in LABEL_NAMES or e.dataset not in parts:
            problems.fatal(UNKNOWN_LABEL, Path(where),
                           f"line {e.line}: dataset {e.dataset!r} / label {e.label!r} is not one of "
                           f"smic/casme2/samm and 0/1/2; fix the composite list.")
            continue
        clip = clips_by_key.get(key)
        if clip is None:
            if key not in reported:
                problems.fatal(MISSING_FOLDER, roots[e.dataset],
                               f"line {e.line} of {Path(where).name} ({e.dataset} {e.subject} "
                               f"{e.filename}) has no clip in the {e.dataset} root; restore the "
                               "clip's frames and its annotation row.")
            continue
        out.append(replace(clip, label=LABEL_NAMES[e.label],
                           attrs={**clip.attrs, "composite": "megc2019", "source_label": clip.label,
                                  "composite_line": e.line}))
    return out
