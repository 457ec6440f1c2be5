"""APPs that cannot be served, one way each."""

not_callable = 42


def factory_that_raises() -> object:
    raise RuntimeError("the database is not configured")


def factory_of_nothing() -> None:
    return None
