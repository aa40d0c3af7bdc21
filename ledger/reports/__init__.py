"""Reports an auditor can be handed: built from the projections, rendered as JSON, CSV or HTML."""
