# SPDX-License-Identifier: Apache-2.0
"""Security checks: forged and replayed MACs, simulation refusals, leaks."""
