"""Synthetic stand-in for CMU-MOSI."""
