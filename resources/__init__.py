"""Data shipped with DIANNE (icons, example networks, the MNIST test set); no code.

This file makes ``resources`` a regular package so ``importlib.resources.files("resources")``
resolves to one real folder.
"""
