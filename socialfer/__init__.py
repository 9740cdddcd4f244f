"""socialfer: the application's configuration and command line (its composition root)."""
