# SPDX-License-Identifier: Apache-2.0
"""The fare rules (configuration) and the pure fare decision."""
