"""Instances made from elsewhere: the generator, trace replays, spreadsheets, OR-Library files.

Nothing here imports a solver.
"""
