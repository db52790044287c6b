"""The package's layers: the core runs without spaCy, spaCy pipelines pay nothing for the
plugin until a cortex component is created, no module imports in a cycle or grows past
the size limit. Subprocesses, so that each check starts from a fresh interpreter."""
import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "spacy_cortex"
# what the lent GPU machine's Python lacks (it has torch, transformers, tokenizers,
# safetensors, numpy, typer and tqdm): the core, the API and the trainer must not need them
SPACY_STACK = ("spacy", "thinc", "catalogue", "srsly", "confection", "weasel", "wasabi", "cymem", "preshed")
# modules that must import nothing of SPACY_STACK, at any depth of their own code
SPACY_FREE = ("core", "api.py", "training/train.py")
MAX_LINES = 500

BLOCKER = textwrap.dedent('''
    import builtins, sys
    class Blocker:
        """Makes packages absent, as if not installed (import fails; importlib.util.find_spec
        says None, which transformers asks), and records our modules' imports of them and of
        the `watched` packages (which stay importable: other plugins may need them)."""
        def __init__(self, names, watched=()):
            self.names, self.asked_by = set(names) | set(watched), []
            for name in names:
                sys.modules[name] = None
            self._import, builtins.__import__ = builtins.__import__, self.guarded
        def guarded(self, name, globals=None, locals=None, fromlist=(), level=0):
            caller = (globals or {}).get("__name__") or ""
            if level == 0 and name.split(".")[0] in self.names and caller.startswith("spacy_cortex"):
                self.asked_by.append([name, caller])
            return self._import(name, globals, locals, fromlist, level)
''')


def run_python(code: str, *args: str, timeout: int = 300) -> dict:
    """Runs `code` in a fresh interpreter; it prints one JSON object as its last line. The
    fork hooks of a component created earlier in this test process may have set
    TOKENIZERS_PARALLELISM here: the child starts without it."""
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    done = subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_core_api_and_trainer_run_without_spacy(tiny_checkpoint, tmp_path):
    """The API on the shipped model and two training steps on the tiny model, with every
    package of spaCy's stack unimportable (as on the GPU machine)."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    context = "The patient was given 20 mg atorvastatin."
    squad = {"task": "squad", "prompt": "What dose was given?", "context": context, "cls": "positive",
             "spans": [[22, 27]]}
    sst2 = {"task": "sst2", "prompt": "Is this text positive?", "context": "refund", "cls": "negative", "spans": None}
    for name, record in (("squad", squad), ("sst2", sst2)):
        (corpus / f"{name}.jsonl").write_text((json.dumps(record) + "\n") * 4)
    (tmp_path / "mix.json").write_text(json.dumps({"squad": 4, "sst2": 4}))
    out = run_python('''
        blocker = Blocker(%r)
        import spacy_cortex
        from spacy_cortex import answer, classify, entail, extract, rank, score, select, similarity
        from spacy_cortex.training.train import app
        found = {
            "extract": [e["text"] for e in extract("Ada Lovelace met Grace Hopper in London.", "Find all persons.")[0]],
            "classify": classify("I want my money back for this order.", ["refund", "shipping"])[0],
            "answer": answer("Who wrote the letter?", "The letter was written by Ada Lovelace.")[0]["text"],
            "entail": entail("A man is sleeping.", "A person is asleep.")[0],
            "similarity": similarity("a cat sat on the mat", "a cat was sitting on a mat")[0],
            "rank": rank("capital of France", ["Paris is the capital of France.", "Bananas are yellow."]),
            "score": score("Name a colour.", ["blue", "Tuesday"]),
            "select": select("Name a colour.", ["blue", "Tuesday"])["index"],
        }
        corpus, output, mix, base = sys.argv[1:5]
        try:
            app([corpus, output, "--mix", mix, "--base", base, "--steps", "2", "--warmup", "1",
                 "--eval-every", "2", "--save-every", "2", "--dev-per-task", "1", "--max-length", "64",
                 "--no-bf16"], standalone_mode=False)
        except SystemExit as stop:
            assert not stop.code, stop.code
        import json
        log = [json.loads(line) for line in open(output + "/log.jsonl")]
        print(json.dumps({"found": found, "log": log, "asked_by": blocker.asked_by,
                           "loaded": sorted(m for m, module in sys.modules.items()
                                     if m.split(".")[0] in blocker.names and module is not None)}))
    ''' % (SPACY_STACK,), str(corpus), str(tmp_path / "out"), str(tmp_path / "mix.json"), str(tiny_checkpoint))
    assert out["asked_by"] == [] and out["loaded"] == []
    found = out["found"]
    assert found["extract"] == ["Ada Lovelace", "Grace Hopper"]
    assert max(found["classify"], key=found["classify"].get) == "refund"
    assert found["answer"] == "Ada Lovelace"
    assert found["entail"]["entailment"] > 0.5
    assert 0.5 < found["similarity"] <= 1.0
    assert found["rank"][0]["index"] == 0 and found["select"] == 0
    assert len(found["score"]) == 2
    assert [r["step"] for r in out["log"]] == [2]


def test_spacy_blank_pays_nothing_for_the_plugin():
    """spaCy imports every installed plugin's factories whenever a pipeline is created: ours
    load neither torch nor transformers, and change nothing process-wide (fork hooks,
    environment, torch threads). thinc itself imports torch where torch is installed (and
    other plugins, spacy-transformers, import both), so our modules' imports are counted."""
    pytest.importorskip("spacy")
    out = run_python('''
        import os, traceback
        blocker = Blocker((), watched=("torch", "transformers"))
        forks = []  # fork hooks registered from our code (the standard library registers its own)
        os.register_at_fork = lambda **hooks: forks.extend(
            f.filename for f in traceback.extract_stack() if "spacy_cortex" in f.filename)
        import json, spacy
        nlp = spacy.blank("en")
        print(json.dumps({
            "ours": sorted(m for m in sys.modules if m.startswith("spacy_cortex")),
            "asked_by": blocker.asked_by, "forks": forks, "has_ner": nlp.has_factory("cortex_ner"),
            "env": "TOKENIZERS_PARALLELISM" in os.environ,
        }))
    ''')
    assert out["has_ner"] and "spacy_cortex.ner" in out["ours"]  # the entry points were loaded
    assert out["asked_by"] == [], out["asked_by"]
    assert out["forks"] == [] and not out["env"]


def test_process_state_changes_only_with_a_component(tiny_checkpoint):
    """The API leaves a forked child's torch threads alone; creating a cortex component
    installs the fork hooks (one torch thread per child, for nlp.pipe(n_process=N))."""
    pytest.importorskip("spacy")
    out = run_python('''
        import json, multiprocessing, os
        import torch
        torch.set_num_threads(2)
        from spacy_cortex import extract, load_model
        extract("the patient was given 20 mg atorvastatin", "Find the drug.", model=load_model(sys.argv[1]))
        def child_threads():
            with multiprocessing.get_context("fork").Pool(1) as pool:
                return pool.apply(torch.get_num_threads)
        before = child_threads(), "TOKENIZERS_PARALLELISM" in os.environ
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("cortex", config={"model": {"checkpoint": sys.argv[1]}})
        after = child_threads(), os.environ.get("TOKENIZERS_PARALLELISM")
        print(json.dumps({"before": before, "after": after}))
    ''', str(tiny_checkpoint))
    assert out["before"] == [2, False]
    assert out["after"] == [1, "false"]


def python_files(root: Path = PACKAGE):
    return sorted(p for p in root.rglob("*.py") if "models" not in p.relative_to(root).parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, top_level_only: bool) -> set:
    """Absolute names of the modules `path` imports (relative imports resolved); with
    top_level_only, only those run at import time (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import x`
    return names


@pytest.mark.parametrize("part", SPACY_FREE)
def test_spacy_free_parts_import_no_spacy(part):
    target = PACKAGE / part
    for path in python_files(target) if target.is_dir() else [target]:
        used = {name.split(".")[0] for name in imported_modules(path, top_level_only=False)}
        assert not used & set(SPACY_STACK), f"{path.relative_to(PACKAGE)} imports {used & set(SPACY_STACK)}"


def test_no_import_cycles():
    modules = {module_name(p): p for p in python_files()}
    graph = {name: {m for m in imported_modules(path, top_level_only=True) if m in modules and m != name}
             for name, path in modules.items()}
    state, stack = {}, []

    def visit(name):
        state[name] = "open"
        stack.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == "open":
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_stay_under_the_size_limit():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf8").splitlines()) for p in python_files()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
