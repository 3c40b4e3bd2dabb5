"""Loads every context's tables, personal-data registrations and ports, in one place."""

import cdp.personal_data
import cdp.segments.upkeep
import cdp.subjects
import cdp.tables  # noqa: F401 - declares tables
import consent.personal_data
import consent.tables  # noqa: F401 - declares tables
import delivery.deliverability.tables
import delivery.journeys.inbox
import delivery.journeys.segment_triggers
import delivery.journeys.services
import delivery.journeys.tables
import delivery.journeys.timed
import delivery.personal_data
import delivery.sending.campaigns
import delivery.sending.tables
import delivery.templates.tables
import delivery.tracking.conversions
import delivery.tracking.personal_data
import delivery.tracking.processing
import delivery.tracking.tables  # noqa: F401 - declares tables
from domain.personal_data import registry

__all__ = ["registry"]
