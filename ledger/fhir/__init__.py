"""FHIR R4 export of the record: access events as ``AuditEvent`` (IHE BALP), annotation lineage as
``Provenance``, in a ``collection`` Bundle or Bulk Data NDJSON (docs/fhir.md)."""
