"""Synthetic stand-in for CMU-MOSEI."""
