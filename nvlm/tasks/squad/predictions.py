"""`SquadPredictions`: the decoded answers of a SQuAD file and the three JSON files they make."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nvlm.outputs import write_json


@dataclass
class SquadPredictions:
    """Answers per question id, as the official evaluation scripts read them.

    Args:
        predictions: {qid: answer text}; "" means "no answer" (SQuAD v2.0).
        nbest: {qid: [{text, probability, start_logit, end_logit, start_char, end_char}]},
            best first. `start_char`/`end_char` index the original context (end exclusive);
            both are None for the no-answer entry (text "").
        null_odds: v2.0 only, {qid: null_score - best_non_null_score}; the official v2.0
            script's `--na-prob-file` (and `nvlm.tasks.squad.metrics.evaluate_v2`'s `null_odds`).

    Example:
        >>> preds = SquadPredictions({"q1": "Ada"}, {"q1": []})
        >>> sorted(p.name for p in preds.write("/tmp/out").values())  # doctest: +SKIP
        ['nbest_predictions.json', 'predictions.json']
    """

    predictions: dict[str, str] = field(default_factory=dict)
    nbest: dict[str, list[dict]] = field(default_factory=dict)
    null_odds: dict[str, float] | None = None

    def __len__(self) -> int:
        return len(self.predictions)

    def write(self, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
        """Write predictions.json, nbest_predictions.json and (v2.0) null_odds.json atomically;
        returns their paths by role."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "predictions": (out / "predictions.json", self.predictions),
            "nbest": (out / "nbest_predictions.json", self.nbest),
        }
        if self.null_odds is not None:
            files["null_odds"] = (out / "null_odds.json", self.null_odds)
        for path, obj in files.values():
            write_json(path, obj)
        return {role: path for role, (path, _) in files.items()}
