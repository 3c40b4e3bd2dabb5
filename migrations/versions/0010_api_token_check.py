"""An API-token check that fails its statement, for the head of a pipeline.

A GraphQL read can then send the token check and its first query in one round
trip: when the token is unknown, revoked or expired, the check raises and
PostgreSQL skips the query queued behind it. On success it answers the
token's id and scopes, which the caller checks before it answers anything.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SECURITY INVOKER: row-level security on api_tokens still applies. `at` is
    # the caller's clock, so that expiry follows the application's time.
    op.execute(
        """
        CREATE FUNCTION cdp_api_token(ws uuid, hash bytea, at timestamptz)
        RETURNS TABLE (token_id uuid, token_scopes text[])
        LANGUAGE plpgsql STABLE SECURITY INVOKER AS $$
        DECLARE
            tok record;
        BEGIN
            SELECT t.id, t.scopes, t.expires_at, t.revoked_at INTO tok
            FROM public.api_tokens t WHERE t.workspace_id = ws AND t.token_hash = hash;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'invalid token'
                    USING ERRCODE = 'invalid_authorization_specification';
            END IF;
            IF tok.revoked_at IS NOT NULL THEN
                RAISE EXCEPTION 'token has been revoked'
                    USING ERRCODE = 'invalid_authorization_specification';
            END IF;
            IF tok.expires_at IS NOT NULL AND tok.expires_at <= at THEN
                RAISE EXCEPTION 'token has expired'
                    USING ERRCODE = 'invalid_authorization_specification';
            END IF;
            token_id := tok.id;
            token_scopes := tok.scopes;
            RETURN NEXT;
        END $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION cdp_api_token(uuid, bytea, timestamptz)")
