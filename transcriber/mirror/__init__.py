"""The PostgreSQL mirror of the job table."""
