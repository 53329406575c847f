# SPDX-License-Identifier: Apache-2.0
"""The back office and field tools: replay, export, inspect."""
