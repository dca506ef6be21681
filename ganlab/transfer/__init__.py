"""Starting from a trained run: `init=` (init.py) loads its networks into a new run, FreezeD (freeze_d.py) keeps
D's first blocks as they were."""
