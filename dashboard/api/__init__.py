"""The JSON APIs: /api/mp/ for the mini-program (views.py) and /api/v1/ for other back ends (v1.py)."""
