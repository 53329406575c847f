# SPDX-License-Identifier: Apache-2.0
"""CLI commands for real readers: ``validator readers`` and ``validator emulate``."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add the reader commands to the ``validator`` group."""
