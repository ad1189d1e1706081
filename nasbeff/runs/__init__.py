"""One module per workflow (demo, rank, score, search, report, pretrain, select): a validated config
in, rows out, progress through a callback; no typer, no printing. :mod:`nasbeff.cli` parses options,
calls a run and renders its result.

May import every package below it (core, data, tables, spaces, store, executors, evaluation,
predictors, proxies, training, selection, optimizers); never the CLI."""
