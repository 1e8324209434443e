"""The limits feature (part 15): how much of the service each tenant may use.

It owns the plans' quotas and their per-tenant overrides, and the middleware that applies them
to every request made with a tenant's token, before admission control: a cap on the tenant's
requests in flight, then its quota. See docs/rate-limits.md for the policy and why.
"""
