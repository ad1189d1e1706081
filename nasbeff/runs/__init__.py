"""One module per workflow (rank, score, search, report, demo): a validated config in, rows out,
progress through a callback; no typer, no printing. :mod:`nasbeff.cli.commands` parses options, calls a
run and renders its result."""
