"""Annotation tools as producers: Label Studio and CVAT webhooks mapped to ledger events (docs/integrations.md)."""
