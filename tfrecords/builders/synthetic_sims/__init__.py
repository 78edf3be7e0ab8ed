"""Synthetic stand-in for CH-SIMS."""
