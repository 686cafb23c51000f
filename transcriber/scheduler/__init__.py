"""The daemon's job table, queue and dispatch of jobs to workers."""
