"""Identity: who a request comes from (OIDC login, bearer tokens) and which roles
and groups their claims give them. The gate (access.policy) decides what they may do."""
