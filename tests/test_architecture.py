"""The layout's promises: no import cycles, one copy of the remote code, corpora own their facts."""

from __future__ import annotations

import ast
import filecmp
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hf_ser"
TRIO = ("configuration_ser.py", "feature_extraction_ser.py", "modeling_ser.py", "pipeline_ser.py", "audio_ser.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """hf_ser modules a file imports at module level or inside functions (relative imports resolved)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        found.update(c for c in candidates if c.startswith("hf_ser") and c != name)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py") if "checkpoints" not in p.parts}
    return {name: {m for m in _imports(path) if m in files} for name, path in files.items()}


def test_no_import_cycles_between_modules():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for child in graph[node]:
            if state.get(child) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, child]))
            if child not in state:
                visit(child, [*stack, node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])
    assert "hf_ser.data.augment" not in {m for m in graph["hf_ser.data.splits"]}  # the old data<->augment cycle


# The documented layer order (README, "How it fits together"), lowest first: a module may import only modules of
# its own layer or of a layer below. Every module of the package must belong to a layer.
LAYERS = [
    ["hf_ser.models.ser"],  # the Hub remote code: self-contained
    ["hf_ser.audio", "hf_ser.input_policy", "hf_ser.metrics", "hf_ser.confidence", "hf_ser.files", "hf_ser.hub_ids"],
    ["hf_ser.encoders", "hf_ser.models"],
    ["hf_ser.data"],
    ["hf_ser.training"],
    ["hf_ser.onnx", "hf_ser.batch", "hf_ser.adaptation", "hf_ser.inference", "hf_ser.timeline", "hf_ser.ray_batch"],
    ["hf_ser.publish"],
    ["hf_ser.finetune", "hf_ser.example", "hf_ser.scoring"],
    ["hf_ser.demo", "hf_ser.commands", "hf_ser.cli"],
]


def _layer(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def test_no_module_imports_a_layer_above_its_own():
    graph = _graph()
    unlayered = sorted(m for m in graph if m != "hf_ser" and _layer(m) is None)
    assert not unlayered, f"modules in no layer (add them to LAYERS and the README): {unlayered}"
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() if m != "hf_ser" for d in deps if _layer(d) > _layer(m))
    assert not upward, f"imports against the layer order: {upward}"


def test_the_readme_names_only_modules_that_exist():
    import re

    section = (ROOT / "README.md").read_text().split("## How it fits together", 1)[1].split("\n## ", 1)[0]
    for path in re.findall(r"hf_ser/[\w/]+\.py", section):
        assert (ROOT / path).is_file(), f"README names {path}, which does not exist"


def test_the_remote_code_trio_imports_nothing_of_hf_ser():
    for name in TRIO:
        outside = {m for m in _imports(PACKAGE / "models" / "ser" / name) if not m.startswith("hf_ser.models.ser.")}
        assert not outside, (name, outside)


SHIPPED = sorted(p for p in (PACKAGE / "checkpoints").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_bundled_checkpoints_hold_no_copy_of_the_code_only_pointers(folder, tmp_path):
    """The model code lives once, in hf_ser/models/ser; bundled folders load through the registered classes, and
    hold only the pointers ``write_code_pointers`` writes for the modules their configs name (each one import
    line from the installed hf-ser), so that ``trust_remote_code=True`` finds them."""
    import shutil

    from hf_ser.models.remote_code import POINTER_MARK, write_code_pointers

    shipped = {p.name: p.read_text() for p in folder.glob("*.py")}
    for name, text in shipped.items():
        assert text.startswith(POINTER_MARK) and len(text.splitlines()) == 2, f"{folder / name} is not a pointer"
    fresh = tmp_path / folder.name
    shutil.copytree(folder, fresh, ignore=shutil.ignore_patterns("*.py", "onnx"))
    write_code_pointers(fresh)
    assert {p.name: p.read_text() for p in fresh.glob("*.py")} == shipped  # what a release writes today


def test_pushed_folder_gets_complete_remote_code(tmp_path):
    import shutil

    from hf_ser.models.remote_code import write_remote_code

    folder = tmp_path / "m"
    shutil.copytree(SHIPPED[0], folder)
    assert list(folder.glob("*.py"))  # the bundled folder's pointers, which the real files replace
    written = write_remote_code(folder)
    assert set(TRIO) <= set(written)
    for name in written:
        assert filecmp.cmp(folder / name, PACKAGE / "models" / "ser" / name, shallow=False)
    assert {p.name for p in folder.glob("*.py")} == set(written)  # no pointer left: it would need hf-ser


def test_code_pointers_refuse_a_module_hf_ser_does_not_have(tmp_path):
    from hf_ser.models.remote_code import write_code_pointers

    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoConfig": "configuration_other.OtherConfig"}}))
    with pytest.raises(ValueError, match="configuration_other.*not an hf-ser remote-code module"):
        write_code_pointers(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"auto_map": {"AutoConfig": "user/repo--configuration_ser.X"}}))
    with pytest.raises(ValueError, match="expected 'module.Class' class references"):
        write_code_pointers(tmp_path)


def test_every_corpus_module_owns_its_facts_and_mapping():
    from hf_ser.data.corpora import CORPORA, UNIFIED_EMOTIONS

    modules = {p.stem for p in (PACKAGE / "data" / "corpora").glob("*.py")} - {"__init__", "base", "taxonomy"}
    assert set(CORPORA) == modules  # every module registers itself; nothing else lists them
    for name, corpus in CORPORA.items():
        assert set(corpus.to_unified) == set(corpus.emotions), name
        assert set(corpus.to_unified.values()) <= set(UNIFIED_EMOTIONS), name
        facts = corpus.facts
        assert facts.language and facts.license and facts.citation.startswith("@"), name
    assert CORPORA["emovo"].facts.language == "it" and CORPORA["emodb"].facts.language == "de"


def test_a_card_for_an_unknown_corpus_is_an_error_not_english(tmp_path):
    from hf_ser.publish.cards import corpus_facts

    with pytest.raises(ValueError, match="no corpus module describes"):
        corpus_facts("iemocap")


def test_version_is_defined_once():
    import importlib.metadata

    import hf_ser

    assert '\nversion = "' not in (ROOT / "pyproject.toml").read_text()
    assert importlib.metadata.version("hf-ser") == hf_ser.__version__
    assert (PACKAGE / "py.typed").is_file()


@pytest.mark.parametrize("name", sorted(__import__("hf_ser.data.corpora", fromlist=["CORPORA"]).CORPORA))
def test_every_registered_corpus_loads_its_own_example_layout(name, tmp_path):
    import numpy as np
    import soundfile as sf

    from hf_ser.data.corpora import CORPORA, load_corpus, unify_labels

    corpus = CORPORA[name]()
    assert len(corpus.example_speakers) == 2, f"{name}: give two example speaker ids"
    expected = []
    for speaker in corpus.example_speakers:
        for emotion in corpus.emotions:
            for index in range(2):
                path = tmp_path / corpus.example_file(emotion, speaker, index)
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, np.full(800, 0.1, np.float32), 8000)
                expected.append((emotion, speaker))
    ds, report = load_corpus(name, tmp_path, strict=True, return_report=True)
    names = ds.features["emotion"].names
    assert sorted((names[e], s) for e, s in zip(ds["emotion"], ds["speaker"])) == sorted(expected)
    assert report.loaded == len(expected) and not report.unmatched
    unified = unify_labels(ds, name)
    assert set(unified.features["emotion"].names) == set(corpus.to_unified.values())


def test_lazy_names_are_not_shadowed_by_submodules():
    """Importing a submodule sets it as an attribute of its package: a lazy name equal to a submodule's name
    (``hf_ser.segments`` was both) would turn from a function into a module once anything imported it."""
    from hf_ser import _LAZY

    submodules = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert not set(_LAZY) & submodules


def test_the_packages_listing_is_its_public_names_and_each_resolves():
    """`dir(hf_ser)` listed the `annotations` and `importlib` its own imports left behind, beside the public names."""
    import hf_ser

    public = [name for name in dir(hf_ser) if not name.startswith("_")]
    assert public == sorted(hf_ser._LAZY)
    assert all(callable(getattr(hf_ser, name)) for name in public)
