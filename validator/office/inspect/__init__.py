# SPDX-License-Identifier: Apache-2.0
"""``validator inspect``: read a whole card and decode it."""
