"""After a search: evaluate, analyse, export, predict and serve the winner."""
