"""The drop folder: layout, sidecars, names, the watcher."""
