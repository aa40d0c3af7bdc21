"""Authentication and authorisation: JWT bearer tokens, roles and tenants."""
