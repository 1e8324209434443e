"""The limits feature (part 15): how much of the service each tenant may use.

It owns the plans' quotas and their per-tenant overrides, and the dependency that every
feature route runs after authentication: a cap on the tenant's requests in flight, then its
rate limit. See docs/rate-limits.md for the policy and why.
"""
