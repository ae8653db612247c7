"""Who is asking: users, roles, agency scope, sessions and API tokens."""
