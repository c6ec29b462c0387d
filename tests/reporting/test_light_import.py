"""Importing the report and export modules pulls in neither matplotlib nor onnxruntime.

Checked in a fresh interpreter: other tests in this process may have imported them already.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_reporting_and_export_import_light():
    code = (
        "import sys, prunekit.reporting, prunekit.export; "
        "heavy = [m for m in ('matplotlib', 'onnxruntime', 'onnxscript') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
