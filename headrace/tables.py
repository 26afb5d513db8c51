"""Delimited files read as one pandas table: what ``to_pandas_dataframe`` does, on the client
(``TabularDataset``) and inside a step (``Run.get_context().input_datasets``) alike.

Standard library only at import: steps import the run context, and pandas is loaded only
when a table is actually read.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["TableSource", "read_delimited"]

#: (datastore, path on it, the bytes or a local file): one file of a tabular dataset
TableSource = tuple[str, str, bytes | Path]


def read_delimited(
    sources: Iterable[TableSource],
    options: Mapping[str, Any],
    error: Callable[[str], Exception],
) -> Any:
    """Every source parsed with the dataset's options and concatenated, in order (a
    ``DataFrame``); a file that does not parse raises ``error(message)`` naming its datastore
    and path."""
    pd: Any = importlib.import_module("pandas")
    sep = str(options.get("separator", ","))
    header = bool(options.get("header", True))
    encoding = str(options.get("encoding", "utf-8"))
    frames = []
    for datastore, path, data in sources:
        try:
            frames.append(
                pd.read_csv(
                    io.BytesIO(data) if isinstance(data, bytes) else data,
                    sep=sep,
                    header=0 if header else None,
                    encoding=encoding,
                )
            )
        except (ValueError, UnicodeDecodeError) as exc:
            # pandas' ParserError and EmptyDataError are ValueErrors.
            raise error(
                f"{path!r} on datastore {datastore!r} cannot be read as a table: "
                f"{PurePosixPath(path).name} is not a valid delimited file (separator {sep!r}, "
                f"header={header}, encoding {encoding!r}): {type(exc).__name__}: "
                f"{str(exc).strip()}"
            ) from None
    if not frames:
        return pd.DataFrame()
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
