"""The dashboard: Quebec's pages in the Django admin, their queries, and the health check.

``stats`` and ``health`` hold the queries (each bounded, whatever the size of the tables),
``lists`` the admin list helpers, ``views`` the pages and actions that ``quebec.admin`` wires
into the admin site, and ``urls`` the public health endpoint.
"""
