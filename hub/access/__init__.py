"""Who may do what: roles, permissions and scopes (`permissions`), users and API tokens
(`users`), sign-in (`auth`) and sessions kept on the hub (`sessions`), what of the registry a
caller's scope reaches (`scope`), and the sign-in routes. Imports `core` and `registry`."""
