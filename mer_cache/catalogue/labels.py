"""Label schemes: map a clip's raw dataset label to the classes of a task.

A scheme returns ``None`` for a clip the task leaves out (for example ``others`` under
``megc3``, or ``non_micro`` outside ``smic4``). Nothing is left out silently:
:func:`apply_scheme` counts every (dataset, label) a scheme does not map, and callers
report the counts (``Sequences.dropped``, an :class:`UnmappedLabelWarning`, the CLI).

``megc3`` is a *mapping* of any dataset's emotions to negative/positive/surprise. Applied to
one dataset it is not the MEGC2019 list: on CASME II it keeps fear and sadness clips and
sub04 EP12_01f, which the published composite leaves out. The composite itself is the
``megc2019`` dataset (the shipped 442-clip list).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

from mer_cache.errors import LabelError


@dataclass(frozen=True)
class LabelScheme:
    name: str
    classes: tuple[str, ...]
    description: str
    _map: Callable[[str, str], str | None]

    def map(self, dataset: str, raw_label: str) -> str | None:
        """Task class of a raw label, or None when the scheme drops it."""
        return self._map(dataset, raw_label)

    def index(self, dataset: str, raw_label: str) -> int | None:
        cls = self.map(dataset, raw_label)
        return None if cls is None else self.classes.index(cls)


def _norm(raw: str) -> str:
    return raw.strip().lower().replace(" ", "_").replace("-", "_")


_SMIC4 = {"negative": "negative", "positive": "positive", "surprise": "surprise",
          "non_micro": "non_micro", "nonmicro": "non_micro", "non_me": "non_micro"}

# MEGC2019 composite classes: negative = anger, contempt, disgust, fear, sadness, repression;
# positive = happiness; surprise = surprise; "others" is dropped (REFERENCE.md section 5).
# CAS(ME)^3 part A writes "happy" and "sad"; its own 3-class column maps happy -> positive
# and sad/anger/disgust/fear -> negative (REFERENCE.md section 11).
_MEGC3 = {
    "negative": "negative", "anger": "negative", "contempt": "negative",
    "disgust": "negative", "fear": "negative", "sadness": "negative", "sad": "negative",
    "repression": "negative", "positive": "positive", "happiness": "positive",
    "happy": "positive", "surprise": "surprise",
}

# CASME II 5-class task; sadness (4) and fear (2) are too rare and are dropped, as in
# most CASME II papers that report five classes.
_CASME2_5 = {"happiness": "happiness", "surprise": "surprise", "disgust": "disgust",
             "repression": "repression", "others": "others", "other": "others"}


def _from_table(table: dict[str, str]) -> Callable[[str, str], str | None]:
    return lambda dataset, raw: table.get(_norm(raw))


LABEL_SCHEMES: dict[str, LabelScheme] = {
    s.name: s
    for s in (
        LabelScheme("smic4", ("negative", "positive", "surprise", "non_micro"),
                    "SMIC 4-class task of Bai & Goecke (non-micro clips included)",
                    _from_table(_SMIC4)),
        LabelScheme("megc3", ("negative", "positive", "surprise"),
                    "negative/positive/surprise mapping of any dataset's emotions, others "
                    "dropped; on one dataset it is a mapping, not the MEGC2019 list (that is "
                    "the megc2019 dataset)",
                    _from_table(_MEGC3)),
        LabelScheme("casme2-5", ("happiness", "surprise", "disgust", "repression", "others"),
                    "CASME II 5 classes; sadness and fear dropped",
                    _from_table(_CASME2_5)),
    )
}


def get_scheme(name: str, raw_labels: list[str] | None = None) -> LabelScheme:
    """Look up a scheme by name; ``emotion`` builds one from the raw labels seen.

    Raises
    ------
    LabelError
        For an unknown name (the message lists the known ones).
    """
    if name == "emotion":
        if not raw_labels:
            raise LabelError("The 'emotion' label scheme needs the raw labels of the data.")
        classes = tuple(sorted({_norm(r) for r in raw_labels}))
        return LabelScheme("emotion", classes, "raw dataset labels",
                           lambda dataset, raw: _norm(raw))
    if name not in LABEL_SCHEMES:
        known = ", ".join([*LABEL_SCHEMES, "emotion"])
        raise LabelError(f"Unknown label scheme '{name}'. Known schemes: {known}.")
    return LABEL_SCHEMES[name]


class UnmappedLabelWarning(UserWarning):
    """Clips left out because the label scheme does not map their label (with counts)."""


@dataclass(frozen=True)
class SchemeResult:
    """What a scheme made of a list of clips.

    Attributes
    ----------
    mapped : list of str or None
        The task class of each clip, None where the scheme leaves the clip out.
    unmapped : Counter
        ``(dataset, raw label) -> number of clips`` the scheme left out.
    """

    mapped: list[str | None]
    unmapped: Counter = field(default_factory=Counter)

    def summary(self, scheme: str) -> str:
        """One line naming every unmapped label with its count (empty when none)."""
        if not self.unmapped:
            return ""
        parts = ", ".join(f"{d} '{lab}' x{n}" for (d, lab), n in sorted(self.unmapped.items()))
        return (f"label scheme '{scheme}' left out {sum(self.unmapped.values())} of "
                f"{len(self.mapped)} clips whose label it does not map: {parts}")


def apply_scheme(scheme: LabelScheme, datasets: Sequence[str], raw_labels: Sequence[str]) -> SchemeResult:
    """Map every clip's raw label, counting what the scheme leaves out per dataset and label."""
    mapped = [scheme.map(d, r) for d, r in zip(datasets, raw_labels)]
    unmapped = Counter((str(d), str(r)) for d, r, m in zip(datasets, raw_labels, mapped) if m is None)
    return SchemeResult(mapped, unmapped)
