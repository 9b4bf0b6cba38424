"""GLUE's MRPC files, built from Microsoft's release as GLUE's download script builds them.

MRPC is not in a GLUE zip (its licence): nyu-mll's download_glue_data.py takes Microsoft's
`msr_paraphrase_train.txt` and `msr_paraphrase_test.txt` (header `Quality #1 ID #2 ID
#1 String #2 String`, tab-separated, no quoting) and GLUE's `mrpc_dev_ids.tsv` (one
`#1 ID<TAB>#2 ID` pair a line), and writes (facts read from that script, not its code):

- train.tsv and dev.tsv: the train file's header, then each train row, in dev.tsv when its
  (#1 ID, #2 ID) pair is a dev id, else in train.tsv;
- test.tsv: header `index #1 ID #2 ID #1 String #2 String`, rows numbered from 0, no label.

Each output is written whole or not at all (`atomic_path`).
"""

from __future__ import annotations

from pathlib import Path

from nvlm.errors import UserError
from nvlm.outputs import atomic_path

TEST_HEADER = "index\t#1 ID\t#2 ID\t#1 String\t#2 String"


def _rows(path: Path) -> tuple[str, list[list[str]]]:
    """The header and the 5-column rows of a Microsoft MRPC file (a leading BOM dropped)."""
    text = path.read_bytes().decode("utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise UserError(f"{path} is empty")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) != 5:
            raise UserError(f"{path} line {number}: {len(cells)} columns where MRPC has 5")
        rows.append(cells)
    return lines[0], rows


def build_mrpc(source: Path, out: Path) -> list[str]:
    """Write out/train.tsv, dev.tsv and test.tsv from the three files in `source`; return
    their paths."""
    dev_ids = set()
    for line in (source / "mrpc_dev_ids.tsv").read_text(encoding="utf-8-sig").splitlines():
        if line.strip():
            first, _, second = line.strip().partition("\t")
            dev_ids.add((first, second))
    header, rows = _rows(source / "msr_paraphrase_train.txt")
    train = [header]
    dev = [header]
    for cells in rows:
        (dev if (cells[1], cells[2]) in dev_ids else train).append("\t".join(cells))
    _, test_rows = _rows(source / "msr_paraphrase_test.txt")
    test = [TEST_HEADER] + [f"{i}\t" + "\t".join(cells[1:]) for i, cells in enumerate(test_rows)]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, lines in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", test)):
        with atomic_path(out / name) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(str(out / name))
    return written
