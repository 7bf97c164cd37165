"""``stumble keys new-data-key|rotate-data-key``: the data keys of encryption at rest.

``new-data-key`` prints a fresh key (for a key file or ``STUMBLE_DATA_KEY``). With the server
stopped, ``rotate-data-key`` re-encrypts the data directory under a new key (``stumble.rekey``):

- keys from ``data_key_file``: a new key is put first in the file, everything is re-encrypted
  under it, then the old keys are dropped from the file (``--keep-old`` keeps them);
- keys from ``STUMBLE_DATA_KEY``: put the new key first in the variable yourself; the command
  re-encrypts under it and names the old keys that may then be removed.

``--no-new-key`` only re-encrypts under the current key: to encrypt a directory that was
written before encryption was turned on, or to finish a rotation that stopped half-way.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from stumble.cli.common import CommandError, add_data_options, require_data_dir, settings_from
from stumble.encryption import (
    KEY_ENV_VAR,
    generate_key_text,
    key_text,
    load_data_keys,
    write_key_file,
)


def register_actions(actions: argparse._SubParsersAction[Any]) -> None:
    new = actions.add_parser("new-data-key", help="print a new data key (encryption at rest)")
    new.set_defaults(func=_new_data_key)

    rotate = actions.add_parser(
        "rotate-data-key",
        help="re-encrypt database, spool and audit log under a new data key (server stopped)",
    )
    add_data_options(rotate)
    rotate.add_argument(
        "--no-new-key", action="store_true", help="re-encrypt under the current key only"
    )
    rotate.add_argument(
        "--keep-old", action="store_true", help="leave the old keys in the key file"
    )
    rotate.set_defaults(func=_rotate)


def _new_data_key(_: argparse.Namespace) -> int:
    print(generate_key_text())
    return 0


def _rotate(args: argparse.Namespace) -> int:
    import duckdb  # noqa: PLC0415 - keep `stumble --help` free of DuckDB

    from stumble.rekey import rekey_data_dir  # noqa: PLC0415
    from stumble.spool import SpoolUnavailable  # noqa: PLC0415

    settings = settings_from(args)
    data_dir = require_data_dir(settings)
    keys = load_data_keys(settings.data_key_file, data_dir)
    if keys is None:
        raise CommandError(
            "no data key is configured: set data_key_file to a file made with "
            f"`stumble keys new-data-key > FILE && chmod 600 FILE`, or set {KEY_ENV_VAR}",
            2,
        )
    key_file = Path(settings.data_key_file) if not os.environ.get(KEY_ENV_VAR) else None
    if key_file is not None and not args.no_new_key:
        write_key_file(key_file, [generate_key_text(), *(key_text(k) for k in keys.keys)])
        keys = load_data_keys(settings.data_key_file, data_dir)
        assert keys is not None
    try:
        report = rekey_data_dir(data_dir, keys)
    except SpoolUnavailable:
        raise CommandError(
            "a stumble server is running on this data directory; stop it first"
        ) from None
    except duckdb.Error as error:  # the database held by another process, a full disk…
        raise CommandError(f"the database could not be re-encrypted: {error}") from None
    print(
        f"everything is encrypted under data key {report.key_id}: {report.segments} spool "
        f"segments, {'the' if report.database else 'no'} database file and "
        f"{report.audit_lines} audit lines rewritten"
    )
    old = [key for key in keys.keys if key != keys.current]
    if not old:
        return 0
    old_ids = ", ".join(key.hex_id for key in old)
    if key_file is not None and not args.keep_old:
        write_key_file(key_file, [key_text(keys.current)])
        print(f"removed the old keys {old_ids} from {key_file}")
    else:
        print(f"the old keys {old_ids} are no longer needed; remove them from {keys.source}")
    return 0
