"""One message's path: the Gateway client, reading its answers, the pure routing decision,
delivery and settlement.
"""
