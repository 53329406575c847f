# SPDX-License-Identifier: Apache-2.0
"""The command line: every ``validator`` command, on top of all packages."""
