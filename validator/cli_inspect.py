# SPDX-License-Identifier: Apache-2.0
"""CLI commands for support staff: ``validator inspect`` and ``validator decode``."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add these commands to the ``validator`` group."""
