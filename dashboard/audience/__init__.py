"""The Users area: search, a user's page, the per-template funnel, CSV import of attributes."""
