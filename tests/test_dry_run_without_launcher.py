"""`nvlm pretrain --dry-run` on a machine without the chosen launcher (a login node without
srun preparing a Slurm script) prints the command with a warning; a real run still refuses."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from helpers import error_line, invoke

from nvlm.errors import UserError
from nvlm.launch.command import choose_launcher

WARNING = (
    "warning: srun is not installed here: the command is printed for another machine (it runs "
    "srun from that machine's PATH)"
)


@pytest.fixture
def bare_path(tmp_path, monkeypatch) -> Path:
    """A PATH with no launcher on it (and no Slurm allocation or rank around)."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for var in ("SLURM_JOB_ID", "OMPI_COMM_WORLD_RANK", "HOROVOD_RANK", "PMI_RANK", "NVLM_CHILD"):
        monkeypatch.delenv(var, raising=False)
    return empty


def srun_pretrain(data: Path, out: Path, *extra: str):
    return invoke("pretrain", "--model", "transformer-xl", "--preset", "cpu-fp32", "--data", data,
                  "--out", out, "--set", "model.size=tiny", "--gpus", "2", "--launcher", "srun",
                  *extra)  # fmt: skip


def test_dry_run_prints_the_srun_command_with_a_warning(txl_corpus, tmp_path, bare_path):
    out = tmp_path / "run"
    result = srun_pretrain(txl_corpus, out, "--dry-run")
    assert result.exit_code == 0, result.output
    argv = shlex.split(result.stdout.strip())
    assert argv[:4] == ["srun", "--mpi=pmi2", "--ntasks", "2"]  # the name: that machine's PATH
    assert argv[argv.index("--config") + 1] == str((out / "config.yaml").absolute())
    assert WARNING in " ".join(result.stderr.split())
    assert not out.exists()


def test_dry_run_json_carries_the_command_and_warns_on_stderr(txl_corpus, tmp_path, bare_path):
    result = srun_pretrain(txl_corpus, tmp_path / "run", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["launcher"] == "srun" and out["argv"][:4] == ["srun", "--mpi=pmi2", "--ntasks", "2"]
    assert WARNING in " ".join(result.stderr.split())


def test_without_dry_run_a_missing_launcher_is_still_refused(txl_corpus, tmp_path, bare_path):
    line = error_line(srun_pretrain(txl_corpus, tmp_path / "run"))
    assert line == (
        "nvlm: error: launcher srun is not installed (not on PATH); `nvlm doctor` lists the "
        "launchers found, or pass --launcher auto"
    )
    assert not (tmp_path / "run").exists()


def test_choose_launcher_accepts_a_missing_named_launcher_only_when_asked():
    def nothing(name: str) -> None:
        return None

    assert choose_launcher("srun", {}, nothing, installed=False) == "srun"
    assert choose_launcher("mpirun", {}, nothing, installed=False) == "mpirun"
    with pytest.raises(UserError, match="launcher srun is not installed"):
        choose_launcher("srun", {}, nothing)
    # auto has nothing to choose from: a dry run cannot guess the other machine's launcher.
    with pytest.raises(UserError, match="no launcher found"):
        choose_launcher("auto", {}, nothing, installed=False)
