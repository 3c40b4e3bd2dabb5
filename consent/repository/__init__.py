"""The consent context's SQL, in SQLAlchemy Core against `consent.tables`.

One module per aggregate; each function takes the unit of work and scopes
its statement to the unit of work's workspace. Services call these and hold
no SQL of their own.
"""
