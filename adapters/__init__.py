"""Surfaces around the core: Slack, Teams, the console, the HTTP server and the CLI."""
