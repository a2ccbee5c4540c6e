"""Dashboard pages. URL → view → selector (reads) or service (writes)."""
