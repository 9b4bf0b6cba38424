"""The package's import structure, read from the source with `ast` (function-level imports
included, since a cycle hidden inside a function is still a cycle): no import cycle, nothing
outside `nvlm/cli/` imports the CLI, and every import points down the tiers of `TIERS`: data
needs no model code, model code nothing of training, tasks, checkpoints or the CLI."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import nvlm

ROOT = Path(nvlm.__file__).parent

# The layers, lowest first. A module may import its own top-level package, a lower tier, or
# (within one tier) a sibling package; never a higher tier (docs/architecture.md).
TIERS = {
    "": 0, "errors": 0, "outputs": 0, "report": 0,  # nvlm/__init__.py, errors, atomic files, console
    "config": 1, "presets": 1, "registry": 1, "resolve": 1,  # configuration, the plugin contract
    "run_dir": 1, "checkpoint_files": 1,  # the run directory's layout and rules
    "data": 2, "layers": 2,  # data preparation; Keras layers (neither imports the other)
    "models": 3,  # networks: no training, tasks, checkpoints or CLI
    "train": 4, "tasks": 4, "convert": 4, "launch": 4, "dist": 4,  # what runs models
    "plugins": 5,  # each model's glue to everything below
    "bench": 6, "cli": 6,  # the commands (bench never imports cli: see the test below)
    "__main__": 7,
}  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module a dotted name lives in (`nvlm.convert.detect_source` -> `nvlm.convert`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package
                    for _ in range(node.level - 1):
                        up = up.rpartition(".")[0]
                    base = f"{up}.{base}" if base else up
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                owner = _owner(target) if target.startswith("nvlm") else None
                if owner and owner != module:
                    edges[module].add(owner)
    return edges


GRAPH = _graph()


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_sees_function_level_imports():
    # nvlm.cli.main imports the commands inside functions; they must be edges.
    assert "nvlm.cli.pretrain" in GRAPH["nvlm.cli.main"] or any(
        t.startswith("nvlm.cli.") for t in GRAPH["nvlm.cli.main"]
    )
    assert len(MODULES) > 150


def test_no_import_cycle():
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert cycles == []


def test_nothing_outside_the_cli_imports_it():
    outside = {
        (m, t)
        for m, targets in GRAPH.items()
        for t in targets
        if t.startswith("nvlm.cli") and not m.startswith("nvlm.cli") and m != "nvlm.__main__"
    }
    assert outside == set()


def test_every_top_level_module_has_a_tier():
    assert {_layer(m) for m in MODULES} <= set(TIERS)


def _upward(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {
        (m, t)
        for m, ts in graph.items()
        for t in ts
        if _layer(m) != _layer(t) and TIERS[_layer(t)] > TIERS[_layer(m)]
    }


def _crossing(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Imports from data, layers or models outside what each may use."""
    allowed = {"models": {"models", "layers", "config", "errors"}, "data": {"data", "errors",
               "outputs", "report", "run_dir", ""}, "layers": {"layers", "errors"}}  # fmt: skip
    return {
        (m, t)
        for m, ts in graph.items()
        for t in ts
        if _layer(m) in allowed and _layer(t) not in allowed[_layer(m)]
    }


def test_layers_depend_downward_only():
    assert _upward(GRAPH) == set()


def test_model_code_needs_nothing_above_it_and_data_no_model_code():
    assert _crossing(GRAPH) == set()


def test_the_checks_see_the_imports_they_forbid():
    bad = {"nvlm.models.bert.build": {"nvlm.train.trainer", "nvlm.layers.attention"},
           "nvlm.data.vocab": {"nvlm.models.bert.config"},
           "nvlm.train.run": {"nvlm.plugins.bert.plugin", "nvlm.models.bert.build"}}  # fmt: skip
    assert _upward(bad) == {
        ("nvlm.models.bert.build", "nvlm.train.trainer"),
        ("nvlm.data.vocab", "nvlm.models.bert.config"),
        ("nvlm.train.run", "nvlm.plugins.bert.plugin"),
    }
    assert _crossing(bad) == {
        ("nvlm.models.bert.build", "nvlm.train.trainer"),
        ("nvlm.data.vocab", "nvlm.models.bert.config"),
    }


def test_a_run_and_an_export_made_before_the_change_give_the_same_outputs(tmp_path):
    import json
    import shutil

    from helpers import invoke

    fixtures = Path(__file__).parent / "fixtures" / "before-architecture"
    for name, saved in (("run", "features.jsonl"), ("hf", "features-hf.jsonl")):
        src = shutil.copytree(fixtures / name, tmp_path / name)
        result = invoke(*["predict", "--model", "bert", "--init", str(src),
                                          "--task", "features", "--text", "w109 w114 w117",
                                          "--pooled"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == json.loads((fixtures / saved).read_text())
