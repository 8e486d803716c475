"""Bearer tokens for the staff, admin and ingest APIs (HMAC-signed with ``secret_key``).

A stop-gap until the security issue brings real identity: every id-bearing
route already depends on :data:`server.auth.deps.AdminDep` (or a sibling), so
later work only tightens what a token must prove. See ``docs/server-api.md``.
"""

from server.auth.tokens import ROLES, Principal, Role, TokenError, issue_token, verify_token

__all__ = ["ROLES", "Principal", "Role", "TokenError", "issue_token", "verify_token"]
