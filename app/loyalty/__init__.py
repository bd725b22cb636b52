"""The platform-agnostic loyalty domain.

Functions here take a SQLAlchemy session and ids, change rows inside the caller's
transaction (they never commit), and return results or intents (things to do outside the
database once the transaction has committed). Nothing here knows Flask or any platform.
"""
