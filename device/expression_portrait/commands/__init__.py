"""One module per ``expression-portrait`` subcommand, each with add_arguments() and run()."""
