"""The files of `nvlm data demo-corpus`: corpus.txt and, if asked, SQuAD train/dev files and a
labelled (classification) train/dev set.

Every output is checked before any is written, so a refusal leaves --out as it was."""

from __future__ import annotations

from pathlib import Path

from nvlm.data.demo_classify import write_demo_classify
from nvlm.data.demo_corpus import write_demo_corpus
from nvlm.data.demo_squad import write_demo_squad
from nvlm.errors import UserError
from nvlm.outputs import check_output_file

SQUAD_VERSIONS = ("1.1", "2.0")


def write_demo_set(
    out: Path,
    *,
    documents: int,
    seed: int,
    squad: str | None = None,
    classify: bool = False,
    overwrite: bool = False,
) -> dict:
    """Write `documents` synthetic documents to out/corpus.txt and, with `squad` (a SQuAD
    version), squad-train.json / squad-dev.json, with `classify`, classify-train.jsonl /
    classify-dev.jsonl, about the same kind of made-up people; returns the summary of all.

        write_demo_set(Path("demo-data"), documents=2000, seed=0, classify=True)
    """
    if squad not in (None, *SQUAD_VERSIONS):
        raise UserError(f"--squad {squad} is not a SQuAD version (use 1.1 or 2.0)")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    names = ["corpus.txt", *(["squad-train.json", "squad-dev.json"] if squad else [])]
    names += ["classify-train.jsonl", "classify-dev.jsonl"] if classify else []
    for name in names:  # all checked before any is written
        check_output_file(out / name, overwrite=overwrite)
    summary = write_demo_corpus(out, documents, seed)
    if squad:
        summary.update(write_demo_squad(out, people=200, seed=seed, version=squad))
    if classify:
        summary.update(write_demo_classify(out, examples=1600, seed=seed))
    return summary
