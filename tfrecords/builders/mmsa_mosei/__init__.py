"""CMU-MOSEI from MMSA's processed pickle."""
