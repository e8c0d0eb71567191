"""living-review services: PubMed harvest, screening, extraction, pooling, digest, web."""
