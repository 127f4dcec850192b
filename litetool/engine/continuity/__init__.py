"""Continuity: proving that the live database continues the spooled position.

The proofs a start resumes by (``continuity``: WAL header, salts and
checksums, the seal of a clean stop, page digests) and the page digests of
the replicated image (``page_digests``). See docs/ARCHITECTURE.md, "Why
nothing is lost while litetool is down".
"""
