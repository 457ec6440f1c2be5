def configure() -> None:
    raise RuntimeError("the database URL is missing")


configure()
app = None
