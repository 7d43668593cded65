"""The CSV files of the GTSRB layouts: rows with their line numbers, integer cells and sign boxes, and the
image files the rows name; every problem is a one-line DataError naming the file and the line."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

from train.data.records import DataError

ROI_COLUMNS = ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2")


def read_csv(path: Path, delimiter: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header must name every ``required`` column.

    Line numbers are as an editor shows them (the header is line 1). A row cut short (fewer cells
    than the header) and a quote left open (the csv module then reads on across line ends, into one
    huge cell) are errors naming the file and the line.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    line = 1  # the header
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [name for name in required if name not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} "
                                f"(expected header {delimiter.join(required)})")
            reader.fieldnames = header
            for row in reader:
                line = reader.line_num
                texts = [v for value in row.values() for v in (value if isinstance(value, list) else [value])
                         if isinstance(v, str)]
                if any("\n" in text for text in texts):  # only a quote left open makes a cell span lines
                    # A quote still open at the end of the file takes the last line end into its cell too.
                    first = line - sum(text.rstrip("\r\n").count("\n") for text in texts)
                    raise DataError(f"{path} line {first}: a quote (\") is not closed, so the row runs on to line "
                                    f"{line}; fix or remove the quote")
                cells = _cells(row)
                if not any(cells.values()):  # ";;;;"-only lines
                    continue
                if None in row.values():
                    short = [name for name in header if row.get(name) is None]
                    raise DataError(f"{path} line {line}: {len(header) - len(short)} of {len(header)} columns "
                                    f"(missing {', '.join(short)}); expected {delimiter.join(header)}")
                rows.append((line, cells))
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataError(f"{path} line {line + 1}: not readable as CSV ({error}); is a quote (\") left open?") from None
    return rows


def _cells(row: dict) -> dict[str, str]:
    return {k: v.strip() for k, v in row.items() if isinstance(k, str) and isinstance(v, str)}


def cell_int(row: dict[str, str], column: str, path: Path, line: int) -> int:
    try:
        return int(row[column])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{path} line {line}: {column} is {row.get(column)!r}, expected an integer") from None


def roi(row: dict[str, str], path: Path, line: int) -> list[int]:
    return [cell_int(row, column, path, line) for column in ROI_COLUMNS]


def require_files(csv_path: Path, rows: list[tuple[int, dict[str, str]]], paths: list[Path]) -> None:
    missing = [(line, p) for (line, _), p in zip(rows, paths) if not p.is_file()]
    if missing:
        line, path = missing[0]
        raise DataError(f"{csv_path} line {line} names missing file {path} "
                        f"({len(missing)} of {len(rows)} rows name missing files)")
