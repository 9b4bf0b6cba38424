"""`nvlm data download glue --task T`: the published table, --from a zip or directory made
here from our hand-written GLUE files (never the network), and the checksum refusal."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

from helpers import error_line, invoke, json_of

from nvlm.data.download import sources as download_sources
from nvlm.data.download.sources import GLUE, GLUE_FOLDERS, Artifact
from nvlm.tasks.classify.glue import GLUE_TASKS, read_glue

FIXTURES = Path(__file__).parent / "fixtures" / "glue"


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _cola_zip(path: Path) -> Path:
    """CoLA.zip as GLUE lays it out, from our fixture files (plus a test.tsv written here)."""
    with zipfile.ZipFile(path, "w") as zf:
        for split in ("train", "dev"):
            zf.write(FIXTURES / "CoLA" / f"{split}.tsv", f"CoLA/{split}.tsv")
        zf.writestr("CoLA/test.tsv", "index\tsentence\n0\tA kite flew over the hill.\n")
        zf.writestr("CoLA/original/raw.tsv", "not extracted\n")
    return path


def test_published_glue_table_matches_the_reader():
    # One entry per task, every file pinned by sha256, and the zips unpack where read_glue looks.
    assert set(GLUE) == set(GLUE_TASKS) == set(GLUE_FOLDERS)
    for name, task in GLUE_TASKS.items():
        assert GLUE_FOLDERS[name] == task.folder
        for artifact in GLUE[name]:
            assert artifact.checksum.startswith("sha256:") and len(artifact.checksum) == 71
            assert artifact.urls[0].startswith("https://dl.fbaipublicfiles.com/")
        if name != "mrpc":
            members = GLUE[name][0].members
            assert {f"{task.folder}/{f}" for f in task.splits.values()} <= set(members)
    assert GLUE["cola"][0].urls == ("https://dl.fbaipublicfiles.com/glue/data/CoLA.zip",)


def test_from_a_zip_verifies_and_unpacks_into_the_task_folder(tmp_path, monkeypatch):
    archive = _cola_zip(tmp_path / "CoLA.zip")
    pinned = dataclasses.replace(GLUE["cola"][0], checksum=_sha256(archive))
    monkeypatch.setitem(download_sources.SOURCES, ("glue", "cola"), (pinned,))
    out = tmp_path / "glue_data"
    summary = json_of(
        invoke("data", "download", "glue", "--task", "cola", "--out", out, "--from", archive,
               "--json")
    )  # fmt: skip
    assert summary["task"] == "cola" and summary["files"][0]["source"] == str(archive)
    assert (out / "CoLA" / "train.tsv").read_bytes() == (
        FIXTURES / "CoLA" / "train.tsv"
    ).read_bytes()
    assert not (out / "CoLA" / "original").exists()  # only the listed members
    assert read_glue("cola", out, "dev").texts == ["The cat the saw.", "A gull landed on the pier."]


def test_a_zip_that_is_not_the_published_one_is_refused_and_nothing_is_left(tmp_path):
    archive = _cola_zip(tmp_path / "CoLA.zip")
    out = tmp_path / "glue_data"
    result = invoke("data", "download", "glue", "--task", "cola", "--out", out, "--from", archive)
    assert error_line(result) == (
        f"nvlm: error: {archive}: checksum {_sha256(archive)} does not match the published "
        f"{GLUE['cola'][0].checksum} (is it the right file and version?)"
    )
    assert not out.exists()


def test_mrpc_is_built_from_microsofts_files_and_the_dev_ids(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    header = "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    (src / "msr_paraphrase_train.txt").write_text(
        "\ufeff" + header + "1\t11\t12\tThe ferry left at dawn.\tAt dawn the ferry left.\n"
        "0\t13\t14\tThe choir sang.\tThe road was icy.\n"
        "1\t15\t16\tSales doubled.\tSales rose twofold.\n",
        encoding="utf-8",
    )
    (src / "msr_paraphrase_test.txt").write_text(
        header + "0\t21\t22\tA bell rang.\tThe soup was cold.\n", encoding="utf-8"
    )
    (src / "mrpc_dev_ids.tsv").write_text("13\t14\n")
    pinned = tuple(dataclasses.replace(a, checksum=_sha256(src / a.filename)) for a in GLUE["mrpc"])
    monkeypatch.setitem(download_sources.SOURCES, ("glue", "mrpc"), pinned)
    out = tmp_path / "glue_data"
    json_of(invoke("data", "download", "glue", "--task", "mrpc", "--out", out, "--from", src,
                   "--json"))  # fmt: skip
    train, dev = read_glue("mrpc", out, "train"), read_glue("mrpc", out, "dev")
    assert train.texts == ["The ferry left at dawn.", "Sales doubled."]
    assert dev.texts == ["The choir sang."] and list(dev.labels) == [0]
    assert (out / "MRPC" / "test.tsv").read_text() == (
        "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t21\t22\tA bell rang.\tThe soup was cold.\n"
    )


def test_task_is_required_and_checked(tmp_path):
    result = invoke("data", "download", "glue", "--out", tmp_path / "d")
    assert error_line(result) == (
        "nvlm: error: nvlm data download glue needs --task "
        "(one of cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli)"
    )
    result = invoke("data", "download", "glue", "--task", "sts", "--out", tmp_path / "d")
    assert error_line(result) == (
        "nvlm: error: unknown GLUE task 'sts' (use one of cola|sst2|mrpc|stsb|qqp|mnli|qnli|rte|wnli)"
    )
    result = invoke("data", "download", "squad", "--task", "cola", "--out", tmp_path / "d")
    assert error_line(result) == "nvlm: error: --task applies to glue only, not squad"
    assert not (tmp_path / "d").exists()


def test_an_artifact_for_every_task_unpacks_under_its_folder():
    for name, artifacts in GLUE.items():
        for artifact in artifacts:
            assert isinstance(artifact, Artifact)
            assert all(m.startswith(GLUE_FOLDERS[name] + "/") for m in artifact.members)
