"""The tenancy feature (arrives in part 9): which organisation a request acts for.

It will own tenants (bookstores, publishers, distributors) and scoping every query to the
current tenant, so one deployment can serve many organisations without leaking data.
"""
