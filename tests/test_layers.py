"""The core (ldm_core outside ldm_core.study) never imports the study layer."""
import json
import pkgutil
import subprocess
import sys

import ldm_core

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
