"""Presentation: number formatting, plots and the HTML report."""
