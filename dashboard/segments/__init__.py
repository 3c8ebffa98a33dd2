"""Segments: saved user filters with a live count, a sample and the reach per template (pages and API).

The filter language itself (validation, SQL, reach) is ``dashboard.audience.segments``.
"""
