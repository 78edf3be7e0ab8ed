"""Hard synthetic stand-in for CH-SIMS."""
