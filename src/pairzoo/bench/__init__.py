"""The benchmark: any update codec on every pair (the plug-in, the harness, its results)."""
