# SPDX-License-Identifier: Apache-2.0
"""Where the checkout's folders are, for the labs that run from it."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
