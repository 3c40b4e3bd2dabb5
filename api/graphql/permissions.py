"""Field permissions: authenticate lazily, then check a scope."""

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info


class RequireScope(BasePermission):
    message = "not authorized"

    def __init__(self, scope: str | None = None) -> None:
        self.scope = scope

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        await info.context.require(self.scope)
        return True


def requires(scope: str | None = None) -> list[FieldExtension]:
    """Field extensions for a field that needs a valid token and, optionally, a scope."""
    return [
        PermissionExtension(
            permissions=[RequireScope(scope)], fail_silently=False, use_directives=False
        )
    ]
