"""SMIC: labels from folders, ``HS/s1/micro/negative/s1_ne_01/*.bmp``.

Layout (REFERENCE.md section 5): ``<modality>/<subject>/micro/{negative,positive,surprise}/
<clip>/`` and ``<modality>/<subject>/non_micro/<clip>/``; the cropped release puts the same
tree under ``SMIC_all_cropped/``. ``root`` may be the dataset folder, ``SMIC_all_cropped/``
or the modality folder itself. HS is filmed at 100 fps, VIS and NIR at 25 fps.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from mer_cache.catalogue.build import as_bool, check_choice, clip_from_folder, norm_label, require_root
from mer_cache.catalogue.clip import Clip
from mer_cache.catalogue.problems import MISSING_FOLDER, UNKNOWN_LABEL, ProblemLog
from mer_cache.errors import DatasetError

Modality = Literal["HS", "VIS", "NIR"]
FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}  # SMIC camera rates
MICRO_LABELS = ("negative", "positive", "surprise")
NON_MICRO = "non_micro"
_SUBJECT = re.compile(r"^s\d+$", re.IGNORECASE)


def find_modality_dir(root: Path, modality: str) -> Path:
    """The folder holding the subject folders (``s1``, ``s2`` ...) of one modality.

    Raises
    ------
    DatasetError
        When none of the known layouts is found under ``root``.
    """
    def child(folder: Path, name: str) -> Path | None:
        if not folder.is_dir():
            return None
        for p in folder.iterdir():
            if p.is_dir() and p.name.lower() == name.lower():
                return p
        return None

    candidates = [child(root, modality)]
    for wrapper in ("SMIC_all_cropped", "SMIC", "SMIC_all_raw"):
        w = child(root, wrapper)
        candidates.append(child(w, modality) if w else None)
    candidates.append(root)
    for cand in candidates:
        if cand is not None and any(p.is_dir() and _SUBJECT.match(p.name) for p in cand.iterdir()):
            if cand == root and root.name.upper() in FPS and root.name.upper() != modality:
                continue  # root is another modality's folder
            return cand
    raise DatasetError(
        f"No SMIC {modality} subject folders found under {root}. Expected "
        f"{root}/{modality}/s1/micro/negative/s1_ne_01/*.bmp (raw), "
        f"{root}/SMIC_all_cropped/{modality}/s1/... (cropped), or --root pointing at the "
        f"{modality} folder itself. Check --root and the modality option."
    )


def load_smic(
    root: Path | str,
    *,
    problems: ProblemLog,
    modality: Modality = "HS",
    include_non_micro: bool = True,
) -> list[Clip]:
    """SMIC clips of one modality, labelled by their folders.

    Parameters
    ----------
    root : Path
        The SMIC folder, ``SMIC_all_cropped/``, or the modality folder.
    problems : ProblemLog
        Receives empty clip folders, unknown label folders and subjects without clips.
    modality : {"HS", "VIS", "NIR"}
        Camera; clip ids of VIS and NIR end in ``_vis`` / ``_nir`` so they never collide
        with the HS clip of the same name.
    include_non_micro : bool
        Also list ``non_micro`` clips (label ``non_micro``, used by the ``smic4`` scheme).
    """
    root = require_root(root, dataset="smic")
    modality = check_choice(str(modality).upper(), tuple(FPS), option="modality", dataset="smic")
    include_non_micro = as_bool(include_non_micro, option="include_non_micro", dataset="smic")
    base = find_modality_dir(root, modality)
    suffix = "" if modality == "HS" else f"_{modality.lower()}"
    clips: list[Clip] = []
    for sdir in sorted((p for p in base.iterdir() if p.is_dir() and _SUBJECT.match(p.name)),
                       key=lambda p: int(p.name[1:])):
        subject = sdir.name
        found = {p.name.lower(): p for p in sdir.iterdir() if p.is_dir()}
        if "micro" not in found and NON_MICRO not in found:
            problems.warning(MISSING_FOLDER, sdir,
                             "subject folder has neither micro/ nor non_micro/; no clip is listed for it.")
            continue
        groups: list[tuple[str, Path]] = []
        if "micro" in found:
            for ldir in sorted(p for p in found["micro"].iterdir() if p.is_dir()):
                if norm_label(ldir.name) not in MICRO_LABELS:
                    problems.fatal(UNKNOWN_LABEL, ldir,
                                   f"label folder {ldir.name!r} is not a SMIC label "
                                   f"({', '.join(MICRO_LABELS)}); rename it or move its clips.")
                    continue
                groups.append((ldir.name, ldir))
        if include_non_micro and NON_MICRO in found:
            groups.append((NON_MICRO, found[NON_MICRO]))
        used: set[str] = set()
        for label, gdir in groups:
            for cdir in sorted(p for p in gdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                name = cdir.name + suffix
                if name in used:  # a non_micro clip named like a micro one
                    name = f"{NON_MICRO}_{name}"
                used.add(name)
                clip = clip_from_folder(
                    dataset="smic", subject=subject, clip_name=name, folder=cdir, label=label,
                    fps=FPS[modality], problems=problems, context=f"SMIC {modality} clip",
                    attrs={"modality": modality, "folder_name": cdir.name,
                           "micro": label != NON_MICRO})
                if clip is not None:
                    clips.append(clip)
    return clips
