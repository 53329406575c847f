# SPDX-License-Identifier: Apache-2.0
"""PKI mode at the gate: the trust files, the card keys verified and cached, the PKI session.

``files`` (the root key file and the revocation list, as models; validator.app.settings loads
them), ``trust`` (CardTrust: the trusted roots, the CA cache, the bounded cache of verified card
certificates by serial, the chain policy of a day), ``session`` (PkiSecureSession: a secure
session signed by the card, with no SAM exchange). docs/pki.md says how they fit.
"""
