# SPDX-License-Identifier: Apache-2.0
"""The tear sweep: every tap torn at every APDU, invariants checked."""
