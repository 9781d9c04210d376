#!/usr/bin/env python3
"""Plain DuckDB SQL over read_json: the reference `cargo bench --bench etl` sets beside etl.

The same DuckDB release as the one the toolkit bundles (pip install duckdb==2.0.0), with its
json extension, which the bundled build leaves out (README, "Two commands"). It creates the
tables from the DDL `create_tables --print-sql` prints, stages the sources with `read_json`,
and builds the star schema with the transform statements `etl --print-sql` prints, all in one
transaction, with DuckDB's default settings. So the two runs differ only in how staging is
loaded: DuckDB's own JSON reader here, the toolkit's loader there.

Usage: plain_duckdb.py DATA_DIR WAREHOUSE.duckdb DDL.sql ETL.sql
Prints one JSON object: {"seconds": ..., "peak_mib": ..., "rows": {table: count}}.
"""

import json
import resource
import sys
import time

import duckdb

STAR = ("songplays", "users", "songs", "artists", "time")

# The staging columns in schema order, with the source field each is read from (the log
# files' fields as the JSONPaths file maps them; song fields by name).
EVENT_FIELDS = [
    ("artist", "VARCHAR"), ("auth", "VARCHAR"), ("firstName", "VARCHAR"),
    ("gender", "VARCHAR"), ("itemInSession", "INTEGER"), ("lastName", "VARCHAR"),
    ("length", "DOUBLE"), ("level", "VARCHAR"), ("location", "VARCHAR"),
    ("method", "VARCHAR"), ("page", "VARCHAR"), ("registration", "DOUBLE"),
    ("sessionId", "INTEGER"), ("song", "VARCHAR"), ("status", "INTEGER"),
    ("ts", "BIGINT"), ("userAgent", "VARCHAR"), ("userId", "VARCHAR"),
]
SONG_FIELDS = [
    ("num_songs", "INTEGER"), ("artist_id", "VARCHAR"), ("artist_latitude", "DOUBLE"),
    ("artist_longitude", "DOUBLE"), ("artist_location", "VARCHAR"),
    ("artist_name", "VARCHAR"), ("song_id", "VARCHAR"), ("title", "VARCHAR"),
    ("duration", "DOUBLE"), ("year", "INTEGER"),
]


def statements(path):
    """The statements of a --print-sql script, comments left out."""
    with open(path, encoding="utf-8") as script:
        text = script.read()
    for chunk in text.split(";\n"):
        lines = [line for line in chunk.splitlines() if not line.startswith("--")]
        statement = "\n".join(lines).strip()
        if statement:
            yield statement


def columns(fields):
    return "{" + ", ".join(f"'{name}': '{ty}'" for name, ty in fields) + "}"


def main():
    data, warehouse, ddl, etl = sys.argv[1:5]
    start = time.perf_counter()
    con = duckdb.connect(warehouse)
    for statement in statements(ddl):
        con.execute(statement)
    con.execute("BEGIN")
    event_columns = ", ".join(name for name, _ in EVENT_FIELDS[:-1])
    con.execute(
        f"INSERT INTO staging_events SELECT {event_columns}, "
        "CAST(NULLIF(userId, '') AS INTEGER) "
        f"FROM read_json('{data}/log_data/**/*.json', format = 'newline_delimited', "
        f"columns = {columns(EVENT_FIELDS)})"
    )
    song_columns = ", ".join(name for name, _ in SONG_FIELDS)
    con.execute(
        f"INSERT INTO staging_songs SELECT {song_columns} "
        f"FROM read_json('{data}/song_data/**/*.json', format = 'auto', "
        f"columns = {columns(SONG_FIELDS)})"
    )
    for statement in statements(etl):
        words = statement.split(None, 3)
        if words[:2] == ["INSERT", "INTO"] and words[2] in STAR:
            con.execute(statement)
    con.execute("COMMIT")
    rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in STAR}
    con.close()
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mib": peak_kib / 1024, "rows": rows}))


if __name__ == "__main__":
    main()
