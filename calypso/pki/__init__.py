# SPDX-License-Identifier: Apache-2.0
"""Calypso Prime PKI mode: certificates, the chain of trust and the session signature.

Pure code (no I/O, no clock): ``fields`` (key references, BCD dates, rights, scope),
``iso9796`` (ISO/IEC 9796-2 scheme 2, the certificates' signature), ``certificates`` (the CA and
card certificate layouts), ``chain`` (the verification policy and the trust store), ``session``
(the signed stream and the ECDSA P-256 session signature), ``testpki`` (test material), and
``errors``. Reference: ``shared/reference/calypso-pki.md``; docs/pki.md says how it is used.
"""
