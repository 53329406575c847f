# SPDX-License-Identifier: Apache-2.0
"""SAM layer: SAM command set, SessionCrypto seam, a SAM client over any reader, software SAM."""
