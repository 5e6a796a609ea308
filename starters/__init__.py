"""HTTP starters and run-management routes, one Blueprint per module."""
