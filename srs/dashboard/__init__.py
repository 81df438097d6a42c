"""The home page and the supervisors' live dashboard, over every floor package."""
