# SPDX-License-Identifier: Apache-2.0
"""The software SAM: legacy SAM APDUs answered with CSIM1 crypto."""
