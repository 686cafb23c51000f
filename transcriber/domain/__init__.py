"""The job, its settings and the pure rules that move it."""
