# SPDX-License-Identifier: Apache-2.0
"""Hostile inputs: malformed and slow cards, and fuzzing of every parser."""
