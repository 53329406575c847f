# SPDX-License-Identifier: Apache-2.0
"""The test PKI tool: ``python -m lab.pki`` (TEST MATERIAL only, see docs/pki.md)."""
