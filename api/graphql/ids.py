"""Decoding global ids taken as mutation arguments."""

from uuid import UUID

from strawberry import relay

from domain.errors import NotFoundError
from domain.ids import parse_uuid


def local_id(global_id: relay.GlobalID, type_name: str, field: str = "id") -> UUID:
    """The UUID inside a global id of `type_name`; any other id is simply not found."""
    key = parse_uuid(global_id.node_id) if global_id.type_name == type_name else None
    if key is None:
        raise NotFoundError(f"no {type_name} with this id", field=field)
    return key
