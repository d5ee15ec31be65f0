"""Start-up cost: the default run imports no library it does not use.

libpysal, esda and mapclassify pull in scikit-learn and scipy.stats: together over a second
of imports on every run, more than the analysis of a local authority takes. They stay
available for the options and notebooks that use them, imported only then.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("libpysal", "esda", "mapclassify", "sklearn", "scipy.stats", "spopt", "pulp",
         "pointpats", "networkx")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport json, sys\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_package_loads_nothing_heavy():
    loaded = _modules_after("import geo_send, geo_send.cli")
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_a_default_run_loads_nothing_heavy(tmp_path):
    loaded = _modules_after(
        "import logging\n"
        "from geo_send.cli import main\n"
        f"assert main(['run', '--quiet', '--out', {str(tmp_path)!r}]) == 0\n"
    )
    assert (tmp_path / "need_map.html").exists()
    assert sorted(m for m in HEAVY if m in loaded) == []
