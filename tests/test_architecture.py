"""The package's import structure, read from the source with `ast` (function-level imports
included, since a cycle hidden inside a function is still a cycle): no import cycle, nothing
outside `nvlm/cli/` imports the CLI, data code needs no model code, layers need nothing above
them, and model code reaches up into training, tasks or checkpoint conversion only where it
did when this test was written (the list may shrink, never grow)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import nvlm

ROOT = Path(nvlm.__file__).parent

# Model modules that still import the layers above them: the plugin glue and checkpoint I/O
# (docs/architecture.md, "What is left"). A new entry here is a step backwards.
KNOWN_UPWARD = {
    ("nvlm.models.encoder.plugin", "nvlm.tasks.squad.task"),
    ("nvlm.models.encoder.plugin", "nvlm.train.trainer"),
    ("nvlm.models.encoder.plugin", "nvlm.train.shards"),
    ("nvlm.models.bert.feature_extractor", "nvlm.train.precision"),
    ("nvlm.models.bert.init", "nvlm.convert"),
    ("nvlm.models.bert.init", "nvlm.convert.bert_weights"),
    ("nvlm.models.bert.init", "nvlm.train.restore"),
    ("nvlm.models.bert.interchange", "nvlm.convert"),
    ("nvlm.models.bert.interchange", "nvlm.convert.bert_weights"),
    ("nvlm.models.bert.interchange", "nvlm.convert.staging"),
    ("nvlm.models.bert.interchange", "nvlm.train.precision"),
    ("nvlm.models.bert.interchange", "nvlm.train.restore"),
    ("nvlm.models.bert.plugin", "nvlm.train.example_source"),
    ("nvlm.models.bert.plugin", "nvlm.train.run"),
    ("nvlm.models.bert.plugin", "nvlm.train.shards"),
    ("nvlm.models.electra.init", "nvlm.convert"),
    ("nvlm.models.electra.init", "nvlm.convert.electra_hf"),
    ("nvlm.models.electra.init", "nvlm.convert.electra_weights"),
    ("nvlm.models.electra.init", "nvlm.train.restore"),
    ("nvlm.models.electra.interchange", "nvlm.convert.electra_hf"),
    ("nvlm.models.electra.interchange", "nvlm.convert.staging"),
    ("nvlm.models.electra.interchange", "nvlm.train.precision"),
    ("nvlm.models.electra.interchange", "nvlm.train.restore"),
    ("nvlm.models.electra.joint_squad", "nvlm.tasks.squad"),
    ("nvlm.models.electra.plugin", "nvlm.train.example_source"),
    ("nvlm.models.electra.plugin", "nvlm.train.run"),
    ("nvlm.models.electra.plugin", "nvlm.train.shards"),
    ("nvlm.models.transformer_xl.init", "nvlm.train.restore"),
    ("nvlm.models.transformer_xl.language_model", "nvlm.train.precision"),
    ("nvlm.models.transformer_xl.plugin", "nvlm.train.run"),
    ("nvlm.models.transformer_xl.plugin", "nvlm.train.trainer"),
}
ABOVE_MODELS = ("train", "tasks", "convert", "cli", "bench", "launch", "squad", "metrics")


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


def test_data_needs_no_model_code_and_layers_nothing_above_them():
    data_up = {
        (m, t)
        for m, ts in GRAPH.items()
        for t in ts
        if _layer(m) == "data" and _layer(t) in ("models", *ABOVE_MODELS)
    }
    assert data_up == set()
    layers_up = {
        (m, t)
        for m, ts in GRAPH.items()
        for t in ts
        if _layer(m) == "layers" and _layer(t) not in ("layers", "errors")
    }
    assert layers_up == set()


def test_model_code_reaches_up_only_where_it_already_did():
    upward = {
        (m, t)
        for m, ts in GRAPH.items()
        for t in ts
        if _layer(m) == "models" and _layer(t) in ABOVE_MODELS
    }
    assert upward - KNOWN_UPWARD == set(), "new upward imports from model code"
    # Entries fixed since: drop them from KNOWN_UPWARD so that they cannot come back.
    assert KNOWN_UPWARD - upward == set()


def test_a_run_and_an_export_made_before_the_change_give_the_same_outputs(tmp_path):
    import json
    import shutil

    from tests.helpers import invoke

    fixtures = Path(__file__).parent / "fixtures" / "before-architecture"
    for name, saved in (("run", "features.jsonl"), ("hf", "features-hf.jsonl")):
        src = shutil.copytree(fixtures / name, tmp_path / name)
        result = invoke(*["predict", "--model", "bert", "--init", str(src),
                                          "--task", "features", "--text", "w109 w114 w117",
                                          "--pooled"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == json.loads((fixtures / saved).read_text())
