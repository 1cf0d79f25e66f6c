"""``vllmtune tune``: search a space of profile knobs for the most goodput under an SLO."""
