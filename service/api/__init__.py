"""HTTP layer: thin route handlers, request parsing, error mapping, middleware."""
