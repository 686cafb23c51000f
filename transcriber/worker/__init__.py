"""The worker process and the daemon's handle to it."""
