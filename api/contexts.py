"""Loads every context's tables and personal-data registrations, in one place."""

import cdp.personal_data
import cdp.tables  # noqa: F401 - imported for their registrations
from domain.personal_data import registry

__all__ = ["registry"]
