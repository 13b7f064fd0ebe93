"""Run folders: created once, never reused; files written atomically. Light: no torch."""
