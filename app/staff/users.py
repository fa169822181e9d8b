"""Account management for admins (/staff/users)."""
