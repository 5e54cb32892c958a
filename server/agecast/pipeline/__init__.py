"""Running the stages: threads, one-slot hand-offs, timings; live, render and bench."""
