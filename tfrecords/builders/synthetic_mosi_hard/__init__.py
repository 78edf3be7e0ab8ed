"""Hard synthetic stand-in for CMU-MOSI."""
