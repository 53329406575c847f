# SPDX-License-Identifier: Apache-2.0
"""The benchmarks: tap exchanges, host cost, PC/SC, scaling, replay."""
