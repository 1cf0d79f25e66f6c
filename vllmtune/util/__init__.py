"""Small standard-library helpers every layer may use (layer L0: imports nothing of vllmtune)."""
