"""edgeavs fusion passes (Relax, before LegalizeOps) and their pattern table."""
