"""Terminal console adapter."""
