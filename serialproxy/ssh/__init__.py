"""What the API, consoleauth and the proxy share about SSH consoles:
the one-time keys users push and the proxy's host keys."""
