"""The rules of Dockyard, free of FastAPI, aiodocker, SQLAlchemy and subprocesses."""
