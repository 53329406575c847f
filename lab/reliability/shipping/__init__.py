# SPDX-License-Identifier: Apache-2.0
"""The shipping-faults part of the reliability campaign (issue 20)."""
