"""The HTTP API: routes, the service behind them, the server."""
