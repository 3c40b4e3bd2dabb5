"""Identity resolution, profiles, events, computed traits and segments."""
