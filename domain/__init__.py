"""Shared kernel: ids, errors, clock, tenancy, unit of work, outbox, broker."""
