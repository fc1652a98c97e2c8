"""HTTP and WebSocket surface: routers, schemas, error rendering, middleware."""
