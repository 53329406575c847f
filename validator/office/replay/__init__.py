# SPDX-License-Identifier: Apache-2.0
"""Offline replay of tap journals (DESIGN section 8)."""
