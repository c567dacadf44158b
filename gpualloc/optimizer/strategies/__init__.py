"""Ways of attacking a model: exact (one backend), portfolio, LNS, LP by column generation and
the Lagrangian bound."""
