"""`LabelSet`: a classifier's label names in id order, saved with the run as JSON."""

from __future__ import annotations

import os
from dataclasses import dataclass

from nvlm import outputs
from nvlm.errors import UserError

# The proposed name of the label set in a run directory (to move to nvlm/run_dir.py as LABELS).
LABELS_FILE = "labels.json"


@dataclass(frozen=True)
class LabelSet:
    """The class names of a classifier, in id order.

    Args:
        names: the labels; id = position.
        source: where the set came from, for messages ("train.jsonl", "--labels").

    Example:
        >>> labels = LabelSet.parse("neg,pos")
        >>> labels.id("pos")
        1
    """

    names: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        where = f" in {self.source}" if self.source else ""
        seen: set[str] = set()
        for name in self.names:
            if not isinstance(name, str) or not name:
                raise UserError(f"the label set{where} holds an empty or non-text label")
            if name in seen:
                raise UserError(f"the label {name!r} appears twice{where}")
            seen.add(name)
        if len(self.names) < 2:
            only = f" ({self.names[0]!r})" if self.names else ""
            raise UserError(
                f"the label set{where} has {len(self.names)} label{only}: a classifier needs "
                "at least two",
                hint="check the label field, or pass --regression for a numeric target",
            )

    @classmethod
    def parse(cls, text: str, source: str = "--labels") -> LabelSet:
        """The `--labels a,b,c` option: names separated by commas, spaces around them ignored."""
        names = [part.strip() for part in text.split(",")]
        if any(not name for name in names):
            raise UserError(f"{source} {text!r} has an empty label", hint="write --labels a,b,c")
        return cls(tuple(names), source)

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def id(self, name: str) -> int:
        return self.names.index(name)

    def to_json(self) -> dict:
        return {"labels": list(self.names)}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Written atomically as `{"labels": [...]}` (RUN/labels.json)."""
        outputs.write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelSet:
        obj = outputs.read_json(path, "label set")
        names = obj.get("labels") if isinstance(obj, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise UserError(f'label set {path} must hold {{"labels": ["a", "b", ...]}}')
        return cls(tuple(names), str(path))
