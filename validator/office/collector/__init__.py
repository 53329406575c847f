# SPDX-License-Identifier: Apache-2.0
"""The collector (``validator office serve``): journals in over mutual TLS, anchors out."""
