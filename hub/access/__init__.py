"""Who may do what: roles, permissions and scopes (`permissions`), users and API tokens
(`users`), sign-in (`auth`) and sessions kept on the hub (`sessions`). Imports `core` and
`registry`."""
