"""Every personal-data column is covered by a registered exporter and eraser."""

from sqlalchemy import Column, MetaData, Table, Text

import api.contexts  # noqa: F401 - loads every registration
import migrations.models  # noqa: F401 - loads every table
from domain.db import metadata
from domain.personal_data import PERSONAL_DATA, PersonalDataRegistry, Subject, registry, uncovered


def test_every_personal_data_column_is_registered():
    assert uncovered(metadata, registry) == {}


class _Handler:
    table = "people"
    category = "contact details"
    purpose = "testing"

    async def export(self, uow, subject: Subject):
        return []

    async def erase(self, uow, subject: Subject):
        return 0


def test_an_unregistered_personal_column_is_reported():
    local = MetaData()
    Table("people", local, Column("email", Text, info={PERSONAL_DATA: True}), Column("note", Text))
    Table("plain", local, Column("value", Text))
    fresh = PersonalDataRegistry()
    assert uncovered(local, fresh) == {"people": ["email"]}
    fresh.register(_Handler())
    assert uncovered(local, fresh) == {}


def test_a_table_registers_once():
    fresh = PersonalDataRegistry()
    fresh.register(_Handler())
    try:
        fresh.register(_Handler())
    except ValueError as exc:
        assert "already" in str(exc)
    else:
        raise AssertionError("a second handler for one table must be refused")
