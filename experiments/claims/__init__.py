"""``tools/reproduce_claims.py``: the paper's claims in miniature, measured and reported (docs/claims)."""
