"""Hard synthetic stand-in for CMU-MOSEI."""
