# SPDX-License-Identifier: Apache-2.0
"""The tap journal: writer, files, verification, pending taps, head."""
