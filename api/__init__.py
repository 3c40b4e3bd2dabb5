"""The only door: HTTP app, GraphQL schema, auth, settings and CLI."""
