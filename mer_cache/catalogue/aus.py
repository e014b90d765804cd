"""Action units as labels: parse every dataset's AU strings into a multi-label target.

The datasets write action units in their own ways: CASME II ``4+7``, ``L12``, ``1+R2+25``
(or the integer 12); SAMM ``R12 + R15``, ``R14A``, ``12B``; 4DME ``AU4+AU7(k)``; CAS(ME)^3
part C ``4,7`` and once ``L12，R14`` (full-width comma). A token is an optional ``AU``, an
optional side (``L``/``R``), the AU number, an optional FACS intensity letter (``A``-``E``)
and an optional flag in brackets (4DME's ``(k)``). :func:`parse_aus` turns a cell into
:class:`ActionUnit` records and returns what it could not read instead of guessing (SAMM's
``R12 or R15`` is ambiguous and is reported, not split). :func:`au_targets` builds the
``(n_clips, n_aus)`` 0/1 matrix over a chosen AU set, with side and intensity kept in the
AU names or dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from mer_cache.errors import LabelError

# AU sets meb evaluates on (meb.utils.dataset_aus): one per dataset and the 12 AUs of its
# cross-dataset protocol.
AU_SETS: dict[str, tuple[str, ...]] = {
    "casme2": ("AU1", "AU2", "AU4", "AU7", "AU12", "AU14", "AU15", "AU17"),
    "casme": ("AU1", "AU4", "AU9", "AU14"),
    "samm": ("AU2", "AU4", "AU7", "AU12"),
    "mmew": ("AU1", "AU2", "AU4", "AU5", "AU7", "AU10", "AU12", "AU14"),
    "4dme": ("AU1", "AU2", "AU4", "AU6", "AU7", "AU12", "AU17", "AU45"),
    "cross": ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17"),
}

_SPLIT = re.compile(r"\s*(?:\+|,|，|;|&|\band\b)\s*", re.IGNORECASE)
_TOKEN = re.compile(
    r"^(?:AU)?\s*(?P<side>[LR])?\s*(?:AU)?\s*(?P<num>\d{1,3})\s*(?P<intensity>[A-E])?\s*"
    r"(?:\((?P<flag>[A-Za-z]+)\))?$", re.IGNORECASE)
_NAME = re.compile(r"^(?P<side>[LR])?(?P<num>\d{1,3})(?P<intensity>[A-E])?$")


@dataclass(frozen=True)
class ActionUnit:
    """One coded action unit: ``R14A`` is number 14, side ``R``, intensity ``A``."""

    number: int
    side: str | None = None  # "L" or "R"; None when both sides or not given
    intensity: str | None = None  # FACS letter A (trace) .. E (maximum)
    flag: str | None = None  # a bracketed mark as written, e.g. 4DME's "k"

    def name(self, *, side: bool = False, intensity: bool = False) -> str:
        """``AU12``; with ``side`` ``AUR12``; with ``intensity`` ``AU12B`` (both: ``AUR12B``)."""
        s = self.side if side and self.side else ""
        i = self.intensity if intensity and self.intensity else ""
        return f"AU{s}{self.number}{i}"


@dataclass(frozen=True)
class ParsedAUs:
    """What :func:`parse_aus` read from one cell."""

    units: tuple[ActionUnit, ...]
    unparsed: tuple[str, ...] = ()


def parse_aus(cell: object) -> ParsedAUs:
    """Action units of one annotation cell; tokens it cannot read are returned in ``unparsed``.

    Examples
    --------
    >>> [u.name(side=True, intensity=True) for u in parse_aus("R4+L10").units]
    ['AUR4', 'AUL10']
    >>> parse_aus("R14A").units[0]
    ActionUnit(number=14, side='R', intensity='A', flag=None)
    >>> parse_aus("R12 or R15").unparsed
    ('R12 or R15',)
    """
    if cell is None:
        return ParsedAUs(())
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    if not text or text.lower() in ("nan", "none", "-", "/"):
        return ParsedAUs(())
    units: list[ActionUnit] = []
    unparsed: list[str] = []
    for token in (t for t in _SPLIT.split(text) if t.strip()):
        m = _TOKEN.match(token.strip())
        if m is None:
            unparsed.append(token.strip())
            continue
        units.append(ActionUnit(int(m["num"]), (m["side"] or "").upper() or None,
                                (m["intensity"] or "").upper() or None, m["flag"]))
    return ParsedAUs(tuple(units), tuple(unparsed))


def normalise_au_name(name: str | int) -> str:
    """``12``, ``"AU12"``, ``"au12"``, ``"R12"`` -> ``AU12``, ``AUR12`` (the names targets use).

    Raises
    ------
    LabelError
        For a name that is not an AU.
    """
    text = re.sub(r"^AU", "", str(name).strip(), flags=re.IGNORECASE).upper()
    m = _NAME.match(text)
    if m is None:
        raise LabelError(f"'{name}' is not an action unit name; write it like 12, AU12, R12 or AU12B.")
    return f"AU{m['side'] or ''}{int(m['num'])}{m['intensity'] or ''}"


@dataclass(frozen=True)
class AUTargets:
    """A multi-label AU target for a list of clips.

    Attributes
    ----------
    y : ndarray of uint8, shape (n_clips, n_aus)
        1 where the clip's annotation codes the AU.
    names : tuple of str
        The AU of each column (``AU12``; ``AUR12``/``AU12B`` when side/intensity are kept).
    unparsed : Counter
        Tokens no clip's cell could be read as, with how often (reported, never guessed).
    outside : Counter
        AUs coded in the data but not in ``names`` (left out of ``y``), with how often.
    """

    y: np.ndarray
    names: tuple[str, ...]
    unparsed: Counter = field(default_factory=Counter)
    outside: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """What was left out, in one line (empty when nothing was)."""
        parts = []
        if self.unparsed:
            parts.append("unreadable AU tokens: " + ", ".join(f"'{t}' x{n}" for t, n in self.unparsed.most_common()))
        if self.outside:
            parts.append("AUs outside the chosen set: " + ", ".join(f"{t} x{n}" for t, n in self.outside.most_common()))
        return "; ".join(parts)


def au_targets(
    cells: Iterable[object],
    *,
    aus: Sequence[str | int] | str | None = None,
    side: bool = False,
    intensity: bool = False,
) -> AUTargets:
    """Multi-label targets over a chosen AU set from the clips' AU cells.

    Parameters
    ----------
    cells : iterable
        One annotation cell per clip (``clip.attrs["action_units"]``).
    aus : sequence, str or None
        The AU set: names or numbers (``[1, "AU4", "R12"]``), the name of a set of
        :data:`AU_SETS` (``"cross"``), or None for every AU seen, in numeric order.
    side : bool
        Keep the side: ``R12`` and ``L12`` become separate columns ``AUR12``/``AUL12``
        (an AU coded without a side fills only ``AU12``). Off: all three are ``AU12``.
    intensity : bool
        Keep the intensity letter: ``AU12B`` is its own column. Off: it is ``AU12``.

    Raises
    ------
    LabelError
        For an unknown AU set name or a name that is not an AU.
    """
    parsed = [parse_aus(c) for c in cells]
    names_of = [[u.name(side=side, intensity=intensity) for u in p.units] for p in parsed]
    if isinstance(aus, str):
        if aus not in AU_SETS:
            raise LabelError(f"Unknown AU set '{aus}'. Known sets: {', '.join(AU_SETS)}; or give the "
                             "AUs themselves (e.g. 1,2,4,12).")
        aus = AU_SETS[aus]
    if aus is None:
        chosen = sorted({n for ns in names_of for n in ns}, key=_au_order)
    else:
        chosen = list(dict.fromkeys(normalise_au_name(a) for a in aus))
    if not chosen:
        raise LabelError("No action unit to train on: the clips' AU cells are empty and no AU set was given.")
    column = {n: i for i, n in enumerate(chosen)}
    y = np.zeros((len(parsed), len(chosen)), dtype=np.uint8)
    outside: Counter = Counter()
    for row, ns in enumerate(names_of):
        for n in ns:
            if n in column:
                y[row, column[n]] = 1
            else:
                outside[n] += 1
    unparsed = Counter(t for p in parsed for t in p.unparsed)
    return AUTargets(y, tuple(chosen), unparsed, outside)


def _au_order(name: str) -> tuple:
    m = _NAME.match(name[2:])
    return (int(m["num"]), m["side"] or "", m["intensity"] or "") if m else (10**6, name, "")
