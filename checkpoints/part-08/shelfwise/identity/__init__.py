"""The identity feature (part 9; roles and API keys in part 18): who is calling, and what they
may do.

It will own users, credentials, tokens and roles within a tenant, and the checks that decide
whether a caller may perform an action.
"""
