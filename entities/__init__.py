"""Durable entities: long-lived, addressable state such as conversation sessions and budgets.

Empty for now; the agent workflows add their entities here, one Blueprint per module.
"""
