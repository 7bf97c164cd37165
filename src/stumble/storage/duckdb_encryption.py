"""DuckDB's own encryption for the embedded database, and NDJSON fed to DuckDB from memory.

The database file is attached with ``ENCRYPTION_KEY`` (AES-GCM in DuckDB; the WAL is
encrypted with it, and ``temp_file_encryption`` covers what big sorts spill). The passphrase
DuckDB gets is a subkey of the data key (``stumble.encryption.duckdb_passphrase``).

DuckDB only *reads* encrypted files with its built-in crypto (MbedTLS): writing needs the
OpenSSL implementation that its ``httpfs`` extension registers, since MbedTLS as DuckDB builds
it has no secure random source for nonces. Extensions cannot be downloaded at run time here,
so ``httpfs`` is loaded by path from a Python package that ships DuckDB's signed build for the
exact DuckDB version installed (``duckdb-extension-httpfs`` for 1.5.x, the pinned line;
``duckdb-ext-httpfs`` for 1.4.x), or from DuckDB's own extension directory when an operator
installed it there.
DuckDB checks the signature; unsigned extensions stay refused. When none fits, opening an
encrypted store fails with ``DatabaseKeyError`` rather than writing plaintext.

Encrypted spool segments are decrypted into a ``memfd`` (an anonymous file in memory) and
read by ``read_json`` through ``/proc/self/fd/N``: the same parser and column map as a file
on disk, no plaintext on any file system, and nothing to clean up after a crash.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import duckdb

from stumble.encryption import DataKey, DataKeyRing
from stumble.storage.base import StorageError

HTTPFS_PACKAGES: Final = ("duckdb_extension_httpfs", "duckdb_ext")
"""Python packages that ship DuckDB's signed httpfs build, by import name."""
_WRONG_KEY: Final = "Wrong encryption key"
_NOT_ENCRYPTED: Final = "is not encrypted"
_NEEDS_KEY: Final = "Cannot open encrypted database"


class DatabaseKeyError(StorageError):
    """The database and the configured data keys do not fit together: it is encrypted and
    no key (or no configured key) opens it, it is plaintext while keys are configured, or this
    DuckDB cannot write encrypted files. The message says which, in one line."""


def httpfs_extension_path(version: str | None = None) -> Path | None:
    """The httpfs extension file a Python package ships for this DuckDB version, if any."""
    wanted = f"v{version or duckdb.__version__}"
    for package in HTTPFS_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            found = sorted(Path(location).glob(f"extensions/{wanted}/**/httpfs.duckdb_extension"))
            if found:
                return found[0]
    return None


def enable_encrypted_writes(con: duckdb.DuckDBPyConnection) -> None:
    """Load httpfs (OpenSSL) so DuckDB can write encrypted files, without any download."""
    path = httpfs_extension_path()
    errors: list[str] = []
    if path is not None:
        try:
            con.execute(f"LOAD '{_quote(str(path))}'")
        except duckdb.Error as error:
            errors.append(f"{path.name}: {type(error).__name__}")
        else:
            return
    try:
        con.execute("LOAD httpfs")  # installed into DuckDB's extension directory by an operator
    except duckdb.Error as error:
        errors.append(f"LOAD httpfs: {type(error).__name__}")
    else:
        return
    raise DatabaseKeyError(
        f"DuckDB {duckdb.__version__} cannot write an encrypted database here: it needs its "
        "httpfs extension (OpenSSL) for exactly this version, which stumble's pinned "
        "`duckdb-extension-httpfs` package ships (reinstall stumble); tried "
        f"{'; '.join(errors) or 'nothing'}"
    )


def attach(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    catalog: str,
    options: str,
    keys: DataKeyRing | None,
) -> DataKey | None:
    """ATTACH the file as ``catalog``, encrypted under the first key that opens it (a new
    file: the current key); returns that key, None without keys."""
    target = _quote(str(path))
    if keys is None:
        try:
            con.execute(f"ATTACH '{target}' AS {catalog}" + (f" ({options})" if options else ""))
        except duckdb.Error as error:
            if _NEEDS_KEY in str(error):
                raise DatabaseKeyError(
                    f"the database {path} is encrypted: set data_key_file or STUMBLE_DATA_KEY"
                ) from None
            raise
        return None
    options = f"{options}, " if options else ""
    for key, passphrase in keys.duckdb_keys():
        try:
            con.execute(
                f"ATTACH '{target}' AS {catalog} ({options}ENCRYPTION_KEY '{passphrase}', "
                "ENCRYPTION_CIPHER 'GCM')"
            )
        except duckdb.Error as error:
            message = str(error)
            if _WRONG_KEY in message:
                continue
            if _NOT_ENCRYPTED in message:
                raise DatabaseKeyError(
                    f"the database {path} is not encrypted but a data key is set; encrypt it "
                    "with `stumble keys rotate-data-key` (server stopped)"
                ) from None
            raise
        return key
    raise DatabaseKeyError(
        f"no configured data key opens the database {path} (tried key ids "
        f"{', '.join(keys.hex_ids)} from {keys.source}); is it the right key?"
    )


def is_encrypted_database(path: Path) -> bool | None:
    """Whether the DuckDB file is encrypted (None: no such file). Reads the header only."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        try:
            con.execute(f"ATTACH '{_quote(str(path))}' AS probe (READ_ONLY)")
        except duckdb.Error as error:
            if _NEEDS_KEY in str(error):
                return True
            if not path.exists():
                return None
            raise
        return False
    finally:
        con.close()


@contextlib.contextmanager
def memory_file(data: bytes) -> Iterator[str]:
    """A path DuckDB can open that holds ``data`` in memory only (Linux ``memfd``)."""
    fd = os.memfd_create("stumble-segment", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view.nbytes:
            view = view[os.write(fd, view) :]
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _quote(text: str) -> str:
    return text.replace("'", "''")
