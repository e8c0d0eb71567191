"""The reviews bundled with living-review: one folder per review (protocol.toml, baseline/, demo/).

Shipped as package data so that an installed ``living-review init`` finds them; REVIEWS_DIR points
elsewhere for reviews of your own.
"""
