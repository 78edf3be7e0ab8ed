"""CMU-MOSI from MMSA's processed pickle."""
