# SPDX-License-Identifier: Apache-2.0
"""``validator doctor``: checks of a host, its readers and its SAM."""
