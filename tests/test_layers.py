"""The core (ldm_core outside ldm_core.study) never imports the study layer."""
import ast
import json
import pkgutil
import subprocess
import sys

import ldm_core
from ldm_core.study.results import project_root

CORE = sorted(m.name for m in pkgutil.walk_packages(ldm_core.__path__, "ldm_core.")
              if not m.name.startswith("ldm_core.study"))

# Imports the core modules one by one in a fresh interpreter; after each, lists the study modules loaded so far.
PROBE = """
import importlib, json, sys
out = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    out[name] = sorted(m for m in sys.modules if m.startswith("ldm_core.study"))
print(json.dumps(out))
"""


def test_the_core_lists_the_modules_that_hold_the_models():
    assert {"ldm_core.models.unet", "ldm_core.train", "ldm_core.metrics", "ldm_core.prior"} <= set(CORE)
    assert not any(m.startswith("ldm_core.study") for m in CORE)


def test_no_core_module_loads_the_study_layer():
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(CORE)], capture_output=True, text=True, check=True)
    loaded = json.loads(res.stdout)
    assert list(loaded) == CORE
    assert {m: s for m, s in loaded.items() if s} == {}


def test_the_probe_sees_a_study_import():
    """The probe itself can fail: importing a study module shows up."""
    res = subprocess.run([sys.executable, "-c", PROBE, json.dumps(["ldm_core.study.names"])], capture_output=True,
                         text=True, check=True)
    assert "ldm_core.study.names" in json.loads(res.stdout)["ldm_core.study.names"]


def _imported_modules(path, package):
    """Absolute names of every module ``path`` imports, at any depth of the file (lazy imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            mod = ".".join(p for p in (base, node.module or "") if p)
            names += [mod] + [f"{mod}.{a.name}" for a in node.names]
    return names


def test_no_core_file_imports_the_study_layer_even_inside_a_function():
    root = project_root() / "ldm_core"
    offenders = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if rel.parts[1] == "study":
            continue
        package = ".".join(rel.with_suffix("").parts[:-1]) if path.name != "__init__.py" else \
            ".".join(rel.parent.parts)
        bad = [m for m in _imported_modules(path, package) if m == "ldm_core.study" or m.startswith("ldm_core.study.")]
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}


def test_the_ast_scan_resolves_relative_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from .study import ledger\n    from ..x import y\n")
    assert "ldm_core.study.ledger" in _imported_modules(f, "ldm_core")
    assert "ldm_core.x.y" in _imported_modules(f, "ldm_core.models")
