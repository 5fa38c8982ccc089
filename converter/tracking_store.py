"""The team's MLflow tracking store, opened without harming it: which URI, and whether MLflow may open it.

Every workstation tool (``convert-model``, ``rc-benchmark``, the demo seeders) goes through here
before MLflow sees a URI, for two reasons:

- **One precedence rule**: the flag, then ``$MLFLOW_TRACKING_URI``, then the config's
  ``[model] tracking_uri``, then the local demo store (:func:`resolve_tracking_uri`).
- **MLflow migrates what it opens.** MLflow 3's SQLAlchemy store, on a database whose tables an
  older MLflow wrote, creates the new tables and runs every migration to its own head, silently;
  the team's MLflow 2.x clients then fail ("Can't locate revision ..."). So the store's alembic
  revision is read first (sqlite: the ``sqlite3`` module on a read-only ``file:...?mode=ro`` URI;
  other databases: one SELECT), and a store older than the installed MLflow's head is read from a
  copy migrated in a temporary folder (sqlite) or refused with the fix; writing to it is refused
  unless the user passed ``--allow-upgrade``. A ``sqlite:`` URI naming a missing file is an error
  (MLflow would create an empty store there), except for a seeder creating its own store.

Servers (``http(s)://``) own their schema and file stores (``mlruns``) have none: both pass through.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import sqlite3
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from converter.errors import RegistryError

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///.demo/mlflow.db"
ENV_VAR = "MLFLOW_TRACKING_URI"
PRECEDENCE = "--tracking-uri, else $MLFLOW_TRACKING_URI, else the config's [model] tracking_uri, else " \
             + DEFAULT_TRACKING_URI
_DB_SCHEMES = ("postgresql", "mysql", "mssql")  # MLflow's SQLAlchemy stores besides sqlite


class StoreError(RegistryError):
    """The store cannot be opened as asked without changing it; the message names the fix."""


def resolve_tracking_uri(flag: str | None, config: str | None = None) -> str:
    """The tracking URI every tool uses: ``flag`` (--tracking-uri), else $MLFLOW_TRACKING_URI, else
    ``config`` (the config file's ``[model] tracking_uri``), else the local demo store."""
    return flag or os.environ.get(ENV_VAR) or config or DEFAULT_TRACKING_URI


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI (relative to the CWD when relative), None for other
    URIs and for in-memory sqlite."""
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme != "sqlite" and not parsed.scheme.startswith("sqlite+"):
        return None
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    path = urllib.parse.unquote(rest.split("?", 1)[0])
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db -> rel.db, sqlite:////abs -> /abs
    return None if path in ("", ":memory:") else Path(path)


def _db_scheme(uri: str) -> str | None:
    scheme = urllib.parse.urlparse(uri).scheme.split("+", 1)[0]
    return scheme if scheme in _DB_SCHEMES else None


@dataclass(frozen=True)
class Schema:
    """The installed MLflow's migrations: its head revision and every revision it knows."""

    mlflow_version: str
    head: str
    known: frozenset[str]


@functools.cache
def installed_schema() -> Schema:
    """The alembic head and known revisions of the installed MLflow (its ``store/db_migrations``)."""
    import mlflow
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(Path(mlflow.__file__).parent / "store" / "db_migrations"))
    heads = script.get_heads()
    if len(heads) != 1:  # never seen in a release; refuse rather than guess which one is current
        raise StoreError(f"the installed MLflow {mlflow.__version__} has {len(heads)} schema heads ({heads})")
    return Schema(mlflow.__version__, heads[0], frozenset(r.revision for r in script.walk_revisions()))


def sqlite_revision(path: Path) -> str | None:
    """The alembic revision of the sqlite store at ``path``, read without writing a byte (a
    read-only connection); None when it has no ``alembic_version`` table (not an MLflow store, or
    an empty file). ``StoreError`` when it is not a sqlite database at all."""
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "alembic_version" not in tables:
                return None
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path} is not a sqlite database ({e}); check the tracking URI") from None
    return str(row[0]) if row else None


def database_revision(uri: str) -> str | None:
    """The alembic revision of a SQLAlchemy store (PostgreSQL, MySQL, ...), by one SELECT; None
    when it has no ``alembic_version`` table."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as con:
            if not sqlalchemy.inspect(con).has_table("alembic_version"):
                return None
            row = con.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).fetchone()
    finally:
        engine.dispose()
    return str(row[0]) if row else None


@dataclass
class StoreAccess:
    """How to open the store ``uri``: ``open_uri`` is what MLflow may open (the store itself, or for
    an older sqlite store read only, a migrated copy in a temporary folder)."""

    uri: str
    open_uri: str
    revision: str | None = None
    head: str | None = None
    read_only_copy: bool = False

    @property
    def writable(self) -> bool:
        """Whether the command may log here (not a read-only copy)."""
        return not self.read_only_copy


_COPIES: dict[tuple[str, int, int], StoreAccess] = {}  # one migrated copy per store state, per process
_COPY_DIRS: list[str] = []


def _remove_copies() -> None:
    for d in _COPY_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_copies)


def open_store(uri: str, write: bool, allow_upgrade: bool = False, create: bool = False) -> StoreAccess:
    """Check ``uri`` before MLflow opens it (see the module). ``write``: the command will log to it;
    ``allow_upgrade``: the user passed --allow-upgrade (MLflow may migrate a store it writes to);
    ``create``: a missing sqlite file may be created (a seeder's own store). ``StoreError`` naming
    the fix when the store is missing, not an MLflow store, newer than this MLflow, or older and
    about to be written without --allow-upgrade."""
    path = sqlite_file(uri)
    if path is not None:
        if not path.is_file():
            if create:
                return StoreAccess(uri, uri)
            raise StoreError(_missing(uri, path))
        revision = sqlite_revision(path)
        if revision is None and path.stat().st_size == 0 and create:
            return StoreAccess(uri, uri)
    elif _db_scheme(uri) is not None:
        revision = database_revision(uri)
    else:
        return StoreAccess(uri, uri)  # a server, a file store or a scheme MLflow will judge itself
    if revision is None:
        raise StoreError(f"tracking URI {uri}: not an MLflow store (no alembic_version table); MLflow would "
                         "create its tables in it; check --tracking-uri / $MLFLOW_TRACKING_URI / [model] tracking_uri")
    schema = installed_schema()
    if revision == schema.head:
        return StoreAccess(uri, uri, revision, schema.head)
    if revision not in schema.known:
        raise StoreError(
            f"the MLflow store {uri} has schema {revision}, which the installed MLflow {schema.mlflow_version} does "
            "not know (a newer MLflow wrote it); upgrade MLflow here (pip install -U mlflow) or use the team's "
            "MLflow server (--tracking-uri http://...)")
    if write and allow_upgrade:
        log.warning("upgrading the MLflow store %s from schema %s to %s (--allow-upgrade): MLflow clients older "
                    "than %s can no longer open it", uri, revision, schema.head, schema.mlflow_version)
        return StoreAccess(uri, uri, revision, schema.head)
    if write or path is None:
        raise StoreError(_older(uri, revision, schema, write))
    return _read_only_copy(uri, path, revision, schema)


def _missing(uri: str, path: Path) -> str:
    hint = " (make the demo store with `make demo`)" if uri == DEFAULT_TRACKING_URI else ""
    return (f"tracking URI {uri}: no sqlite file at {path.resolve()}{hint}; MLflow would create an empty store "
            f"there; name an existing store ({PRECEDENCE})")


def _older(uri: str, revision: str, schema: Schema, write: bool) -> str:
    what = "logging to it would migrate it" if write else "opening it would migrate it"
    reader = " pass --no-log to only read it," if write and sqlite_file(uri) is not None else ""
    return (f"the MLflow store {uri} has an older schema ({revision}; the installed MLflow {schema.mlflow_version} "
            f"expects {schema.head}) and {what}, after which the team's older MLflow clients fail;{reader} "
            f"upgrade the store (back it up, then `mlflow db upgrade {uri}`), run an MLflow {schema.mlflow_version} "
            "server on it and pass its http:// URI, or pass --allow-upgrade")


def _read_only_copy(uri: str, path: Path, revision: str, schema: Schema) -> StoreAccess:
    """A copy of the older sqlite store in a temporary folder, for MLflow to migrate and read; the
    store itself is read through sqlite's backup API on a read-only connection (a consistent
    snapshot even mid-write, and not one byte written)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key in _COPIES:
        return _COPIES[key]
    tmp = tempfile.mkdtemp(prefix="rc-edge-store-")
    _COPY_DIRS.append(tmp)
    copy = Path(tmp) / path.name
    src = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    log.info("the MLflow store %s has the older schema %s (MLflow %s expects %s): reading a migrated copy in %s, "
             "never the store itself", uri, revision, schema.mlflow_version, schema.head, tmp)
    access = StoreAccess(uri, f"sqlite:///{copy}", revision, schema.head, read_only_copy=True)
    _migrate_quietly(access.open_uri, Path(tmp))
    _COPIES[key] = access
    return access



def _migrate_quietly(copy_uri: str, tmp: Path) -> None:
    """Migrate the copy now, once, with MLflow's and alembic's INFO lines ("Updating database
    tables") kept off the console: they would read as if the team's store were being changed."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    loggers = [logging.getLogger(n) for n in ("mlflow.store.db.utils", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        SqlAlchemyStore(copy_uri, (tmp / "no-artifacts").as_uri()).engine.dispose()
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
