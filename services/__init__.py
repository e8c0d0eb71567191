"""living-review domain services: PubMed harvest, screening, extraction, meta-analysis, digest, web."""
