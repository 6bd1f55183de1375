"""One-off studies behind docs/improvements.md (run from the checkout: ``python -m studies.NAME``)."""
