"""Data-subject requests: access, portability, erasure, rectification, restriction, objection."""
