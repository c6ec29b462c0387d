"""Test setup: ``import zoo`` under every pytest import mode, and one CPU thread.

The tests import the zoo as a top-level module (``from zoo import ZOO``), so tests/ goes on
sys.path whether or not pytest puts it there itself (it does not in importlib mode).
The zoo nets are tiny: intra-op threads only add overhead (on a 2-core runner an 8x8 conv took
250x longer with 2 threads than with 1).
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)
