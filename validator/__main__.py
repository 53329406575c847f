# SPDX-License-Identifier: Apache-2.0
"""``python -m validator`` runs the CLI."""

from validator.cli.main import main

main()
