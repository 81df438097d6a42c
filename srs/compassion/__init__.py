"""Compassion-club membership and regulated supply (DOMAIN.md, "Compassion clubs and
regulated supply"): screened members who consent to treatment linkage, tested and labelled
batches kept in the controlled-drug register, supply within rolling limits, and the
evaluation the model needs."""
