"""The app that holds the benchmark's job, so ``quebec_run`` autodiscovers it."""
