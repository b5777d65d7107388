"""The suite's own rule: under CI=true every property test is derandomized (same examples every run)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import tests.conftest; from hypothesis import settings; print(settings.default.derandomize)"


@pytest.mark.parametrize("ci, derandomized", [("true", "True"), (None, "False")])
def test_ci_selects_the_derandomized_hypothesis_profile(ci, derandomized):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=60, check=True)
    assert result.stdout.strip() == derandomized
