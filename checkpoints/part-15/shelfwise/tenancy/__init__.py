"""The tenancy feature (part 9): which organisation the running code acts for.

It owns tenants (bookstores, publishers, distributors), the tenant context, and the two walls
that keep one tenant's rows away from every other: the ORM filter and PostgreSQL's row-level
security. See docs/tenancy.md for the model and why.
"""
