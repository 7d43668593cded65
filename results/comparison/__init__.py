"""results/compare.py: several searches of one task side by side (engines, trials, epochs, time, best, reach)."""
