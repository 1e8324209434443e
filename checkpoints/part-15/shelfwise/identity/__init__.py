"""The identity feature (part 9; roles and API keys in part 18): who is calling.

It owns users, their password hashes, logging in and the signed tokens that carry a verified
tenant, and the dependency that turns a request's token into the current tenant.
"""
