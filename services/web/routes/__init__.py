"""Routes, one module per resource; each defines ``router`` with pages and /api/ endpoints."""
