"""CH-SIMS from MMSA's processed pickle."""
