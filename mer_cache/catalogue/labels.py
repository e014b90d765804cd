"""Label schemes: map a clip's raw dataset label to the classes of a task.

A scheme returns ``None`` for a clip the task leaves out (for example ``others`` in the
MEGC2019 composite, or ``non_micro`` outside ``smic4``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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

# MEGC2019 composite: negative = anger, contempt, disgust, fear, sadness, repression;
# positive = happiness; surprise = surprise; "others" is dropped.
_MEGC3 = {
    "negative": "negative", "anger": "negative", "contempt": "negative",
    "disgust": "negative", "fear": "negative", "sadness": "negative",
    "repression": "negative", "positive": "positive", "happiness": "positive",
    "surprise": "surprise",
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
                    "MEGC2019 composite: others dropped",
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
