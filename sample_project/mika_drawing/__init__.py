"""Draws Mika, the demo character of sample_project/ (see draw_sample.py)."""
