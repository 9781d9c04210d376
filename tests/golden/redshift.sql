-- drop staging_events
DROP TABLE IF EXISTS staging_events;

-- create staging_events
CREATE TABLE staging_events (
    artist VARCHAR(513) COLLATE CASE_SENSITIVE,
    auth VARCHAR(33) COLLATE CASE_SENSITIVE,
    first_name VARCHAR(257) COLLATE CASE_SENSITIVE,
    gender VARCHAR(17) COLLATE CASE_SENSITIVE,
    item_in_session INTEGER NOT NULL,
    last_name VARCHAR(257) COLLATE CASE_SENSITIVE,
    length DOUBLE PRECISION,
    level VARCHAR(17) COLLATE CASE_SENSITIVE,
    location VARCHAR(513) COLLATE CASE_SENSITIVE,
    method VARCHAR(17) COLLATE CASE_SENSITIVE,
    page VARCHAR(65) COLLATE CASE_SENSITIVE,
    registration DOUBLE PRECISION,
    session_id INTEGER NOT NULL,
    song VARCHAR(513) COLLATE CASE_SENSITIVE,
    status INTEGER,
    ts BIGINT NOT NULL,
    user_agent VARCHAR(513) COLLATE CASE_SENSITIVE,
    user_id INTEGER
)
DISTSTYLE EVEN;

-- drop staging_songs
DROP TABLE IF EXISTS staging_songs;

-- create staging_songs
CREATE TABLE staging_songs (
    num_songs INTEGER,
    artist_id VARCHAR(65) COLLATE CASE_SENSITIVE NOT NULL,
    artist_latitude DOUBLE PRECISION,
    artist_longitude DOUBLE PRECISION,
    artist_location VARCHAR(513) COLLATE CASE_SENSITIVE,
    artist_name VARCHAR(513) COLLATE CASE_SENSITIVE,
    song_id VARCHAR(65) COLLATE CASE_SENSITIVE NOT NULL,
    title VARCHAR(513) COLLATE CASE_SENSITIVE,
    duration DOUBLE PRECISION,
    year INTEGER
)
DISTSTYLE EVEN;

-- drop incoming_events
DROP TABLE IF EXISTS incoming_events;

-- create incoming_events
CREATE TABLE incoming_events (
    artist VARCHAR(513) COLLATE CASE_SENSITIVE,
    auth VARCHAR(33) COLLATE CASE_SENSITIVE,
    first_name VARCHAR(257) COLLATE CASE_SENSITIVE,
    gender VARCHAR(17) COLLATE CASE_SENSITIVE,
    item_in_session INTEGER NOT NULL,
    last_name VARCHAR(257) COLLATE CASE_SENSITIVE,
    length DOUBLE PRECISION,
    level VARCHAR(17) COLLATE CASE_SENSITIVE,
    location VARCHAR(513) COLLATE CASE_SENSITIVE,
    method VARCHAR(17) COLLATE CASE_SENSITIVE,
    page VARCHAR(65) COLLATE CASE_SENSITIVE,
    registration DOUBLE PRECISION,
    session_id INTEGER NOT NULL,
    song VARCHAR(513) COLLATE CASE_SENSITIVE,
    status INTEGER,
    ts BIGINT NOT NULL,
    user_agent VARCHAR(513) COLLATE CASE_SENSITIVE,
    user_id INTEGER
)
DISTSTYLE EVEN;

-- drop incoming_songs
DROP TABLE IF EXISTS incoming_songs;

-- create incoming_songs
CREATE TABLE incoming_songs (
    num_songs INTEGER,
    artist_id VARCHAR(65) COLLATE CASE_SENSITIVE NOT NULL,
    artist_latitude DOUBLE PRECISION,
    artist_longitude DOUBLE PRECISION,
    artist_location VARCHAR(513) COLLATE CASE_SENSITIVE,
    artist_name VARCHAR(513) COLLATE CASE_SENSITIVE,
    song_id VARCHAR(65) COLLATE CASE_SENSITIVE NOT NULL,
    title VARCHAR(513) COLLATE CASE_SENSITIVE,
    duration DOUBLE PRECISION,
    year INTEGER
)
DISTSTYLE EVEN;

-- drop loaded_files
DROP TABLE IF EXISTS loaded_files;

-- create loaded_files
CREATE TABLE loaded_files (
    source VARCHAR(16) COLLATE CASE_SENSITIVE NOT NULL,
    file VARCHAR(2048) COLLATE CASE_SENSITIVE NOT NULL,
    bytes BIGINT NOT NULL,
    version VARCHAR(256) COLLATE CASE_SENSITIVE NOT NULL,
    records BIGINT,
    staged BIGINT,
    rejected BIGINT NOT NULL,
    loaded_at VARCHAR(32) COLLATE CASE_SENSITIVE NOT NULL,
    PRIMARY KEY (source, file)
)
DISTSTYLE EVEN;

-- drop load_errors
DROP TABLE IF EXISTS load_errors;

-- create load_errors
CREATE TABLE load_errors (
    source VARCHAR(16) COLLATE CASE_SENSITIVE NOT NULL,
    file VARCHAR(2048) COLLATE CASE_SENSITIVE NOT NULL,
    line BIGINT,
    reason VARCHAR(1024) COLLATE CASE_SENSITIVE NOT NULL,
    raw_text VARCHAR(1024) COLLATE CASE_SENSITIVE
)
DISTSTYLE EVEN;

-- drop songplays
DROP TABLE IF EXISTS songplays;

-- create songplays
CREATE TABLE songplays (
    songplay_id BIGINT NOT NULL,
    start_time TIMESTAMP NOT NULL,
    user_id INTEGER NOT NULL,
    level VARCHAR(16) COLLATE CASE_SENSITIVE,
    song_id VARCHAR(64) COLLATE CASE_SENSITIVE,
    artist_id VARCHAR(64) COLLATE CASE_SENSITIVE,
    session_id INTEGER NOT NULL,
    item_in_session INTEGER NOT NULL,
    location VARCHAR(512) COLLATE CASE_SENSITIVE,
    user_agent VARCHAR(512) COLLATE CASE_SENSITIVE,
    PRIMARY KEY (songplay_id),
    UNIQUE (user_id, session_id, item_in_session)
)
DISTKEY (start_time) SORTKEY (start_time);

-- drop users
DROP TABLE IF EXISTS users;

-- create users
CREATE TABLE users (
    user_id INTEGER NOT NULL,
    first_name VARCHAR(256) COLLATE CASE_SENSITIVE,
    last_name VARCHAR(256) COLLATE CASE_SENSITIVE,
    gender VARCHAR(16) COLLATE CASE_SENSITIVE,
    level VARCHAR(16) COLLATE CASE_SENSITIVE,
    PRIMARY KEY (user_id)
)
DISTSTYLE ALL SORTKEY (user_id);

-- drop songs
DROP TABLE IF EXISTS songs;

-- create songs
CREATE TABLE songs (
    song_id VARCHAR(64) COLLATE CASE_SENSITIVE NOT NULL,
    title VARCHAR(512) COLLATE CASE_SENSITIVE,
    artist_id VARCHAR(64) COLLATE CASE_SENSITIVE,
    year INTEGER,
    duration DOUBLE PRECISION,
    PRIMARY KEY (song_id)
)
DISTSTYLE ALL SORTKEY (song_id);

-- drop artists
DROP TABLE IF EXISTS artists;

-- create artists
CREATE TABLE artists (
    artist_id VARCHAR(64) COLLATE CASE_SENSITIVE NOT NULL,
    name VARCHAR(512) COLLATE CASE_SENSITIVE,
    location VARCHAR(512) COLLATE CASE_SENSITIVE,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    PRIMARY KEY (artist_id)
)
DISTSTYLE ALL SORTKEY (artist_id);

-- drop time
DROP TABLE IF EXISTS time;

-- create time
CREATE TABLE time (
    start_time TIMESTAMP NOT NULL,
    hour INTEGER NOT NULL,
    day INTEGER NOT NULL,
    week INTEGER NOT NULL,
    month INTEGER NOT NULL,
    year INTEGER NOT NULL,
    weekday INTEGER NOT NULL,
    PRIMARY KEY (start_time)
)
DISTKEY (start_time) SORTKEY (start_time);

-- existing tables
SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('staging_events', 'staging_songs', 'incoming_events', 'incoming_songs', 'loaded_files', 'load_errors', 'songplays', 'users', 'songs', 'artists', 'time');

-- mark staging_events
COMMENT ON TABLE staging_events IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark staging_songs
COMMENT ON TABLE staging_songs IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark incoming_events
COMMENT ON TABLE incoming_events IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark incoming_songs
COMMENT ON TABLE incoming_songs IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark loaded_files
COMMENT ON TABLE loaded_files IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark load_errors
COMMENT ON TABLE load_errors IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark songplays
COMMENT ON TABLE songplays IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark users
COMMENT ON TABLE users IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark songs
COMMENT ON TABLE songs IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark artists
COMMENT ON TABLE artists IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- mark time
COMMENT ON TABLE time IS 'sparkify warehouse toolkit: made by create_tables or etl, dropped and rewritten by them';

-- the toolkit's marks
SELECT c.relname, obj_description(c.oid) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relname IN ('staging_events', 'staging_songs', 'incoming_events', 'incoming_songs', 'loaded_files', 'load_errors', 'songplays', 'users', 'songs', 'artists', 'time');

-- the columns of unmarked tables
SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name IN ('staging_events', 'staging_songs', 'incoming_events', 'incoming_songs', 'loaded_files', 'load_errors', 'songplays', 'users', 'songs', 'artists', 'time') ORDER BY table_name, ordinal_position;

-- use [WAREHOUSE] SCHEMA
CREATE SCHEMA IF NOT EXISTS "sparkify";

-- use [WAREHOUSE] SCHEMA
SET search_path TO "sparkify";

-- forget ledger entries
DELETE FROM loaded_files WHERE source = 'log_data' AND file IN ('2018/11/2018-11-01-events.json', 'it''s \\ odd.json');

-- forget ledger entries
DELETE FROM loaded_files WHERE source = 'song_data' AND file IN ('A/B/C/TRABC.json');

-- rejects
SELECT source, file, line, reason, raw_text FROM load_errors ORDER BY source, file, line NULLS FIRST LIMIT 100;

-- matched plays
SELECT COUNT(*), COUNT(song_id) FROM songplays;

-- lock for load
SET statement_timeout TO 1000;

-- lock for load
LOCK staging_events;

-- lock for load
RESET statement_timeout;

-- delete staging_events
DELETE FROM staging_events;

-- delete staging_songs
DELETE FROM staging_songs;

-- copy staging_songs
COPY staging_songs (num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, title, duration, year)
FROM 's3://udacity-dend/song_data/'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'
FORMAT AS JSON 'auto ignorecase'
REGION 'us-west-2'
STATUPDATE ON
MAXERROR 0;

-- copy staging_events
COPY staging_events (artist, auth, first_name, gender, item_in_session, last_name, length, level, location, method, page, registration, session_id, song, status, ts, user_agent, user_id)
FROM 's3://udacity-dend/log_data/'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'
FORMAT AS JSON 's3://udacity-dend/log_json_path.json'
REGION 'us-west-2'
STATUPDATE ON
MAXERROR 0;

-- copy staging_songs through a manifest
COPY staging_songs (num_songs, artist_id, artist_latitude, artist_longitude, artist_location, artist_name, song_id, title, duration, year)
FROM 's3://my-bucket/sparkify-manifests/sparkify-staging_songs.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'
FORMAT AS JSON 'auto ignorecase'
MANIFEST
REGION 'us-west-2'
STATUPDATE ON
MAXERROR 11;

-- events the local loader rejects
SELECT COUNT(*) FROM staging_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- events the local loader rejects
INSERT INTO load_errors (source, file, line, reason, raw_text) SELECT 'log_data', 's3://udacity-dend/log_data/', NULL, CASE WHEN OCTET_LENGTH(artist) > 512 THEN 'artist: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(auth) > 32 THEN 'auth: is longer than the column''s width of 32 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(first_name) > 256 THEN 'first_name: is longer than the column''s width of 256 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(gender) > 16 THEN 'gender: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(last_name) > 256 THEN 'last_name: is longer than the column''s width of 256 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(level) > 16 THEN 'level: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(location) > 512 THEN 'location: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(method) > 16 THEN 'method: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(page) > 64 THEN 'page: is longer than the column''s width of 64 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(song) > 512 THEN 'song: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN ts < -2208988800000 OR ts > 253402300799999 THEN 'ts: ' || CAST(ts AS VARCHAR(24)) || ' is outside years 1900 to 9999 as milliseconds since 1970-01-01' WHEN OCTET_LENGTH(user_agent) > 512 THEN 'user_agent: is longer than the column''s width of 512 bytes (blanks beyond it included)' END, NULL FROM staging_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- events the local loader rejects
DELETE FROM staging_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- songs the local loader rejects
SELECT COUNT(*) FROM staging_songs WHERE (OCTET_LENGTH(artist_id) > 64) OR (OCTET_LENGTH(artist_location) > 512) OR (OCTET_LENGTH(artist_name) > 512) OR (OCTET_LENGTH(song_id) > 64) OR (OCTET_LENGTH(title) > 512);

-- songs the local loader rejects
INSERT INTO load_errors (source, file, line, reason, raw_text) SELECT 'song_data', 's3://udacity-dend/song_data/', NULL, CASE WHEN OCTET_LENGTH(artist_id) > 64 THEN 'artist_id: is longer than the column''s width of 64 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(artist_location) > 512 THEN 'artist_location: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(artist_name) > 512 THEN 'artist_name: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(song_id) > 64 THEN 'song_id: is longer than the column''s width of 64 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(title) > 512 THEN 'title: is longer than the column''s width of 512 bytes (blanks beyond it included)' END, NULL FROM staging_songs WHERE (OCTET_LENGTH(artist_id) > 64) OR (OCTET_LENGTH(artist_location) > 512) OR (OCTET_LENGTH(artist_name) > 512) OR (OCTET_LENGTH(song_id) > 64) OR (OCTET_LENGTH(title) > 512);

-- songs the local loader rejects
DELETE FROM staging_songs WHERE (OCTET_LENGTH(artist_id) > 64) OR (OCTET_LENGTH(artist_location) > 512) OR (OCTET_LENGTH(artist_name) > 512) OR (OCTET_LENGTH(song_id) > 64) OR (OCTET_LENGTH(title) > 512);

-- copy incoming_events through a manifest
COPY incoming_events (artist, auth, first_name, gender, item_in_session, last_name, length, level, location, method, page, registration, session_id, song, status, ts, user_agent, user_id)
FROM 's3://my-bucket/sparkify-manifests/sparkify-incoming_events.manifest'
IAM_ROLE 'arn:aws:iam::123456789012:role/sparkify-redshift-s3-read'
FORMAT AS JSON 's3://udacity-dend/log_json_path.json'
MANIFEST
REGION 'us-west-2'
STATUPDATE ON
MAXERROR 0;

-- incoming events the local loader rejects
SELECT COUNT(*) FROM incoming_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- incoming events the local loader rejects
INSERT INTO load_errors (source, file, line, reason, raw_text) SELECT 'log_data', 's3://my-bucket/sparkify-manifests/sparkify-incoming_events.manifest', NULL, CASE WHEN OCTET_LENGTH(artist) > 512 THEN 'artist: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(auth) > 32 THEN 'auth: is longer than the column''s width of 32 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(first_name) > 256 THEN 'first_name: is longer than the column''s width of 256 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(gender) > 16 THEN 'gender: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(last_name) > 256 THEN 'last_name: is longer than the column''s width of 256 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(level) > 16 THEN 'level: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(location) > 512 THEN 'location: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(method) > 16 THEN 'method: is longer than the column''s width of 16 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(page) > 64 THEN 'page: is longer than the column''s width of 64 bytes (blanks beyond it included)' WHEN OCTET_LENGTH(song) > 512 THEN 'song: is longer than the column''s width of 512 bytes (blanks beyond it included)' WHEN ts < -2208988800000 OR ts > 253402300799999 THEN 'ts: ' || CAST(ts AS VARCHAR(24)) || ' is outside years 1900 to 9999 as milliseconds since 1970-01-01' WHEN OCTET_LENGTH(user_agent) > 512 THEN 'user_agent: is longer than the column''s width of 512 bytes (blanks beyond it included)' END, NULL FROM incoming_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- incoming events the local loader rejects
DELETE FROM incoming_events WHERE (OCTET_LENGTH(artist) > 512) OR (OCTET_LENGTH(auth) > 32) OR (OCTET_LENGTH(first_name) > 256) OR (OCTET_LENGTH(gender) > 16) OR (OCTET_LENGTH(last_name) > 256) OR (OCTET_LENGTH(level) > 16) OR (OCTET_LENGTH(location) > 512) OR (OCTET_LENGTH(method) > 16) OR (OCTET_LENGTH(page) > 64) OR (OCTET_LENGTH(song) > 512) OR (ts < -2208988800000 OR ts > 253402300799999) OR (OCTET_LENGTH(user_agent) > 512);

-- ledger entries
SELECT source, file, bytes, version, records, staged, rejected, loaded_at FROM loaded_files;

-- forget unreadable files
DELETE FROM load_errors WHERE line IS NULL AND reason LIKE 'unreadable file%';

-- insert ledger entries
INSERT INTO loaded_files (source, file, bytes, version, records, staged, rejected, loaded_at) VALUES
('log_data', 's3://udacity-dend/log_data/2018/11/2018-11-30-events.json', 31507, '"9a0364b9e99bb480dd25e1f0284c8555"', NULL, NULL, 0, '2026-11-28T18:00:00Z');

-- append incoming_songs
INSERT INTO staging_songs SELECT * FROM incoming_songs;

-- append incoming_events
INSERT INTO staging_events SELECT * FROM incoming_events;

-- merge bookkeeping
CREATE TEMP TABLE merge_from AS
SELECT touched.start_time, loaded.plays_before, touched.plays_replaced,
       incoming.plays AS incoming_plays, latest.user_events_from
FROM (
    SELECT MIN(start_time) AS start_time, COUNT(CASE WHEN replaced = 1 THEN 1 END) AS plays_replaced
    FROM (
        SELECT start_time, 1 AS replaced FROM songplays p WHERE EXISTS (SELECT 1 FROM incoming_events i WHERE i.user_id = p.user_id AND i.session_id = p.session_id AND i.item_in_session = p.item_in_session)
        UNION ALL
        SELECT TIMESTAMP 'epoch' + ts * INTERVAL '1 millisecond', 0 FROM incoming_events WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL
    ) plays
) touched, (
    SELECT COUNT(*) AS plays_before FROM songplays
) loaded, (
    SELECT COUNT(*) AS plays
    FROM (
        SELECT DISTINCT user_id, session_id, item_in_session FROM incoming_events
        WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL
    ) incoming_keys
) incoming, (
    SELECT MIN(ts) AS user_events_from
    FROM (
        SELECT MAX(ts) AS ts FROM incoming_events WHERE user_id IS NOT NULL GROUP BY user_id
    ) latest_incoming
) latest;

-- merge users
DELETE FROM users WHERE user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL);

-- merge users
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT e.user_id, e.first_name, e.last_name, e.gender, e.level,
           ROW_NUMBER() OVER (
               PARTITION BY e.user_id
               ORDER BY e.ts DESC, e.item_in_session DESC NULLS LAST,
                        e.session_id DESC NULLS LAST,
                        e.level NULLS LAST, LENGTH(e.level), e.first_name NULLS LAST, LENGTH(e.first_name), e.last_name NULLS LAST, LENGTH(e.last_name), e.gender NULLS LAST, LENGTH(e.gender)
           ) AS pick
    FROM staging_events e
    WHERE e.ts >= (SELECT user_events_from FROM merge_from)
      AND e.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)
) ranked
WHERE pick = 1;

-- merge songplays
DELETE FROM songplays USING incoming_events WHERE songplays.user_id = incoming_events.user_id AND songplays.session_id = incoming_events.session_id AND songplays.item_in_session = incoming_events.item_in_session;

-- merge songplays
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       item_in_session, location, user_agent)
WITH plays AS (
    SELECT ts, user_id, level, song, artist, length, session_id, item_in_session, location,
           user_agent
    FROM (
        SELECT e.*,
               ROW_NUMBER() OVER (
                   PARTITION BY user_id, session_id, item_in_session
                   ORDER BY ts NULLS LAST, level NULLS LAST, LENGTH(level), song NULLS LAST, LENGTH(song),
                            artist NULLS LAST, LENGTH(artist), length NULLS LAST, location NULLS LAST, LENGTH(location),
                            user_agent NULLS LAST, LENGTH(user_agent)
               ) AS pick
        FROM staging_events e
        WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM incoming_events i WHERE i.user_id = e.user_id AND i.session_id = e.session_id AND i.item_in_session = e.item_in_session)
    ) ranked
    WHERE pick = 1
),
catalogue AS (
SELECT song_id, title, artist_id, artist_name, year, duration
FROM (
    SELECT song_id, title, artist_id, artist_name, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY song_id, LENGTH(song_id)
               ORDER BY artist_id NULLS LAST, LENGTH(artist_id), title NULLS LAST, LENGTH(title), year NULLS LAST, duration NULLS LAST,
                        artist_name NULLS LAST, LENGTH(artist_name)
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1
),
candidates AS (
    SELECT p.ts, p.user_id, p.level, p.session_id, p.item_in_session, p.location,
           p.user_agent, c.song_id, c.artist_id,
           ROW_NUMBER() OVER (
               PARTITION BY p.user_id, p.session_id, p.item_in_session
               ORDER BY ABS(c.duration - p.length) NULLS LAST, c.song_id NULLS LAST, LENGTH(c.song_id)
           ) AS pick
    FROM plays p
    LEFT JOIN catalogue c
      ON (c.title = p.song AND LENGTH(c.title) = LENGTH(p.song))
     AND (c.artist_name = p.artist AND LENGTH(c.artist_name) = LENGTH(p.artist))
     AND ABS(c.duration - p.length) <= 0.010000001
)
SELECT -ROW_NUMBER() OVER (ORDER BY ts, user_id, session_id, item_in_session),
       TIMESTAMP 'epoch' + ts * INTERVAL '1 millisecond', user_id, level, song_id, artist_id, session_id,
       item_in_session, location, user_agent
FROM candidates
WHERE pick = 1;

-- merge songplays
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       item_in_session, location, user_agent)
WITH plays AS (
    SELECT ts, user_id, level, song, artist, length, session_id, item_in_session, location,
           user_agent
    FROM (
        SELECT e.*,
               ROW_NUMBER() OVER (
                   PARTITION BY user_id, session_id, item_in_session
                   ORDER BY ts NULLS LAST, level NULLS LAST, LENGTH(level), song NULLS LAST, LENGTH(song),
                            artist NULLS LAST, LENGTH(artist), length NULLS LAST, location NULLS LAST, LENGTH(location),
                            user_agent NULLS LAST, LENGTH(user_agent)
               ) AS pick
        FROM incoming_events e
        WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL
    ) ranked
    WHERE pick = 1
),
catalogue AS (
SELECT song_id, title, artist_id, artist_name, year, duration
FROM (
    SELECT song_id, title, artist_id, artist_name, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY song_id, LENGTH(song_id)
               ORDER BY artist_id NULLS LAST, LENGTH(artist_id), title NULLS LAST, LENGTH(title), year NULLS LAST, duration NULLS LAST,
                        artist_name NULLS LAST, LENGTH(artist_name)
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1
),
candidates AS (
    SELECT p.ts, p.user_id, p.level, p.session_id, p.item_in_session, p.location,
           p.user_agent, c.song_id, c.artist_id,
           ROW_NUMBER() OVER (
               PARTITION BY p.user_id, p.session_id, p.item_in_session
               ORDER BY ABS(c.duration - p.length) NULLS LAST, c.song_id NULLS LAST, LENGTH(c.song_id)
           ) AS pick
    FROM plays p
    LEFT JOIN catalogue c
      ON (c.title = p.song AND LENGTH(c.title) = LENGTH(p.song))
     AND (c.artist_name = p.artist AND LENGTH(c.artist_name) = LENGTH(p.artist))
     AND ABS(c.duration - p.length) <= 0.010000001
)
SELECT -ROW_NUMBER() OVER (ORDER BY ts, user_id, session_id, item_in_session),
       TIMESTAMP 'epoch' + ts * INTERVAL '1 millisecond', user_id, level, song_id, artist_id, session_id,
       item_in_session, location, user_agent
FROM candidates
WHERE pick = 1;

-- merge songplays
UPDATE songplays SET songplay_id = renumbered.songplay_id
FROM (
    SELECT user_id, session_id, item_in_session,
           ROW_NUMBER() OVER (ORDER BY start_time, user_id, session_id, item_in_session)
           + (SELECT COUNT(*) FROM songplays
              WHERE start_time < (SELECT start_time FROM merge_from)) AS songplay_id
    FROM songplays
    WHERE start_time >= (SELECT start_time FROM merge_from)
) renumbered
WHERE songplays.start_time >= (SELECT start_time FROM merge_from)
  AND songplays.user_id = renumbered.user_id
  AND songplays.session_id = renumbered.session_id
  AND songplays.item_in_session = renumbered.item_in_session
  AND songplays.songplay_id <> renumbered.songplay_id;

-- merge songplays
UPDATE songplays SET songplay_id = renumbered.songplay_id
FROM (
    SELECT user_id, session_id, item_in_session,
           ROW_NUMBER() OVER (ORDER BY start_time, user_id, session_id, item_in_session)
           + (SELECT plays_before - plays_replaced FROM merge_from) AS songplay_id
    FROM songplays
    WHERE songplay_id < 0
) renumbered
WHERE songplays.songplay_id < 0
  AND songplays.user_id = renumbered.user_id
  AND songplays.session_id = renumbered.session_id
  AND songplays.item_in_session = renumbered.item_in_session;

-- merge time
DELETE FROM time WHERE start_time >= (SELECT start_time FROM merge_from);

-- merge time
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(DATE_PART('hour', start_time) AS INTEGER),
       CAST(DATE_PART('day', start_time) AS INTEGER),
       CAST(DATE_PART('week', start_time) AS INTEGER),
       CAST(DATE_PART('month', start_time) AS INTEGER),
       CAST(DATE_PART('year', start_time) AS INTEGER),
       CAST(DATE_PART('dow', start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays WHERE start_time >= (SELECT start_time FROM merge_from)) plays;

-- merge plays replaced
SELECT plays_replaced FROM merge_from;

-- merge plays moved
SELECT COUNT(*) FROM songplays WHERE start_time >= (SELECT start_time FROM merge_from) AND songplay_id > 0;

-- load history staging_events
SELECT query_id, loaded_rows, error_count, TRIM(status) AS status FROM sys_load_history WHERE session_id = pg_backend_pid() AND (TRIM(table_name) = 'staging_events' OR TRIM(table_name) LIKE '%.staging_events') ORDER BY start_time DESC LIMIT 1;

-- load errors
SELECT TRIM(file_name) AS file, line_number AS line, TRIM(column_name) AS column_name, TRIM(error_message) AS reason FROM sys_load_error_detail WHERE query_id = 5001 ORDER BY file_name, line_number;

-- raw lines provisioned
SELECT TRIM(filename) AS file, line_number AS line, TRIM(raw_line) AS raw_line FROM stl_load_errors WHERE query = pg_last_copy_id();

-- insert rejects
INSERT INTO load_errors (source, file, line, reason, raw_text) VALUES
('log_data', 's3://udacity-dend/log_data/2018/11/2018-11-01-events.json', 7, 'userid: Invalid digit, Value ''x''', '{"userId": "x\\\\y"}\\u{9}end');

-- transform songs
INSERT INTO songs (song_id, title, artist_id, year, duration)
SELECT song_id, title, artist_id, year, duration
FROM (
SELECT song_id, title, artist_id, artist_name, year, duration
FROM (
    SELECT song_id, title, artist_id, artist_name, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY song_id, LENGTH(song_id)
               ORDER BY artist_id NULLS LAST, LENGTH(artist_id), title NULLS LAST, LENGTH(title), year NULLS LAST, duration NULLS LAST,
                        artist_name NULLS LAST, LENGTH(artist_name)
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1
) kept;

-- transform artists
INSERT INTO artists (artist_id, name, location, latitude, longitude)
SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude
FROM (
    SELECT artist_id, artist_name, artist_location, artist_latitude, artist_longitude,
           ROW_NUMBER() OVER (
               PARTITION BY artist_id, LENGTH(artist_id)
               ORDER BY CASE WHEN artist_latitude IS NULL THEN 1 ELSE 0 END,
                        CASE WHEN artist_location IS NULL OR LENGTH(artist_location) = 0
                             THEN 1 ELSE 0 END,
                        artist_name NULLS LAST, LENGTH(artist_name), artist_location NULLS LAST, LENGTH(artist_location),
                        artist_latitude NULLS LAST, artist_longitude NULLS LAST
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1;

-- transform users
INSERT INTO users (user_id, first_name, last_name, gender, level)
SELECT user_id, first_name, last_name, gender, level
FROM (
    SELECT e.user_id, e.first_name, e.last_name, e.gender, e.level,
           ROW_NUMBER() OVER (
               PARTITION BY e.user_id
               ORDER BY e.item_in_session DESC NULLS LAST, e.session_id DESC NULLS LAST,
                        e.level NULLS LAST, LENGTH(e.level), e.first_name NULLS LAST, LENGTH(e.first_name), e.last_name NULLS LAST, LENGTH(e.last_name), e.gender NULLS LAST, LENGTH(e.gender)
           ) AS pick
    FROM staging_events e
    JOIN (
        SELECT user_id, MAX(ts) AS ts
        FROM staging_events
        WHERE user_id IS NOT NULL
        GROUP BY user_id
    ) latest
      ON e.user_id = latest.user_id AND e.ts = latest.ts
) ranked
WHERE pick = 1;

-- transform songplays
INSERT INTO songplays (songplay_id, start_time, user_id, level, song_id, artist_id, session_id,
                       item_in_session, location, user_agent)
WITH plays AS (
    SELECT ts, user_id, level, song, artist, length, session_id, item_in_session, location,
           user_agent
    FROM (
        SELECT e.*,
               ROW_NUMBER() OVER (
                   PARTITION BY user_id, session_id, item_in_session
                   ORDER BY ts NULLS LAST, level NULLS LAST, LENGTH(level), song NULLS LAST, LENGTH(song),
                            artist NULLS LAST, LENGTH(artist), length NULLS LAST, location NULLS LAST, LENGTH(location),
                            user_agent NULLS LAST, LENGTH(user_agent)
               ) AS pick
        FROM staging_events e
        WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL
    ) ranked
    WHERE pick = 1
),
catalogue AS (
SELECT song_id, title, artist_id, artist_name, year, duration
FROM (
    SELECT song_id, title, artist_id, artist_name, year, duration,
           ROW_NUMBER() OVER (
               PARTITION BY song_id, LENGTH(song_id)
               ORDER BY artist_id NULLS LAST, LENGTH(artist_id), title NULLS LAST, LENGTH(title), year NULLS LAST, duration NULLS LAST,
                        artist_name NULLS LAST, LENGTH(artist_name)
           ) AS pick
    FROM staging_songs
) ranked
WHERE pick = 1
),
candidates AS (
    SELECT p.ts, p.user_id, p.level, p.session_id, p.item_in_session, p.location,
           p.user_agent, c.song_id, c.artist_id,
           ROW_NUMBER() OVER (
               PARTITION BY p.user_id, p.session_id, p.item_in_session
               ORDER BY ABS(c.duration - p.length) NULLS LAST, c.song_id NULLS LAST, LENGTH(c.song_id)
           ) AS pick
    FROM plays p
    LEFT JOIN catalogue c
      ON (c.title = p.song AND LENGTH(c.title) = LENGTH(p.song))
     AND (c.artist_name = p.artist AND LENGTH(c.artist_name) = LENGTH(p.artist))
     AND ABS(c.duration - p.length) <= 0.010000001
)
SELECT ROW_NUMBER() OVER (ORDER BY ts, user_id, session_id, item_in_session),
       TIMESTAMP 'epoch' + ts * INTERVAL '1 millisecond', user_id, level, song_id, artist_id, session_id,
       item_in_session, location, user_agent
FROM candidates
WHERE pick = 1;

-- transform time
INSERT INTO time (start_time, hour, day, week, month, year, weekday)
SELECT start_time,
       CAST(DATE_PART('hour', start_time) AS INTEGER),
       CAST(DATE_PART('day', start_time) AS INTEGER),
       CAST(DATE_PART('week', start_time) AS INTEGER),
       CAST(DATE_PART('month', start_time) AS INTEGER),
       CAST(DATE_PART('year', start_time) AS INTEGER),
       CAST(DATE_PART('dow', start_time) AS INTEGER)
FROM (SELECT DISTINCT start_time FROM songplays) plays;

-- count songs
SELECT COUNT(*) FROM songs;

-- count artists
SELECT COUNT(*) FROM artists;

-- count users
SELECT COUNT(*) FROM users;

-- count songplays
SELECT COUNT(*) FROM songplays;

-- count time
SELECT COUNT(*) FROM time;

-- row checks of songs
SELECT COUNT(*), COUNT(CASE WHEN t.song_id IS NULL THEN 1 END) FROM songs t;

-- row checks of artists
SELECT COUNT(*), COUNT(CASE WHEN t.artist_id IS NULL THEN 1 END) FROM artists t;

-- row checks of users
SELECT COUNT(*), COUNT(CASE WHEN t.user_id IS NULL THEN 1 END), COUNT(CASE WHEN t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) THEN 1 END) FROM users t;

-- row checks of songplays
SELECT COUNT(*), COUNT(CASE WHEN t.songplay_id IS NULL THEN 1 END), COUNT(CASE WHEN t.user_id IS NULL THEN 1 END), COUNT(CASE WHEN t.session_id IS NULL THEN 1 END), COUNT(CASE WHEN t.item_in_session IS NULL THEN 1 END), COUNT(CASE WHEN t.start_time IS NULL THEN 1 END), COUNT(CASE WHEN t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) THEN 1 END) FROM songplays t;

-- row checks of time
SELECT COUNT(*), COUNT(CASE WHEN t.start_time IS NULL THEN 1 END), COUNT(CASE WHEN (t.hour < 0 OR t.hour > 23) THEN 1 END), COUNT(CASE WHEN (t.day < 1 OR t.day > 31) THEN 1 END), COUNT(CASE WHEN (t.week < 1 OR t.week > 53) THEN 1 END), COUNT(CASE WHEN (t.month < 1 OR t.month > 12) THEN 1 END), COUNT(CASE WHEN (t.weekday < 0 OR t.weekday > 6) THEN 1 END) FROM time t;

-- offending rows not_null(songs.song_id)
SELECT t.song_id FROM songs t WHERE t.song_id IS NULL ORDER BY t.song_id LIMIT 5;

-- offending rows not_null(artists.artist_id)
SELECT t.artist_id FROM artists t WHERE t.artist_id IS NULL ORDER BY t.artist_id LIMIT 5;

-- offending rows not_null(users.user_id)
SELECT t.user_id FROM users t WHERE t.user_id IS NULL ORDER BY t.user_id LIMIT 5;

-- offending rows not_null(songplays.songplay_id)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE t.songplay_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.user_id)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE t.user_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.session_id)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE t.session_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.item_in_session)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE t.item_in_session IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.start_time)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.start_time FROM songplays t WHERE t.start_time IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(time.start_time)
SELECT t.start_time FROM time t WHERE t.start_time IS NULL ORDER BY t.start_time LIMIT 5;

-- check unique(songs: song_id)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT songs.*, ROW_NUMBER() OVER (PARTITION BY song_id, LENGTH(song_id) ORDER BY song_id) AS repeat_number FROM songs) t;

-- offending rows unique(songs: song_id)
SELECT t.song_id, t.title, t.artist_id, t.year, t.duration FROM (SELECT songs.*, ROW_NUMBER() OVER (PARTITION BY song_id, LENGTH(song_id) ORDER BY song_id) AS repeat_number FROM songs) t WHERE t.repeat_number > 1 ORDER BY t.song_id LIMIT 5;

-- check unique(artists: artist_id)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT artists.*, ROW_NUMBER() OVER (PARTITION BY artist_id, LENGTH(artist_id) ORDER BY artist_id) AS repeat_number FROM artists) t;

-- offending rows unique(artists: artist_id)
SELECT t.artist_id, t.name, t.location, t.latitude, t.longitude FROM (SELECT artists.*, ROW_NUMBER() OVER (PARTITION BY artist_id, LENGTH(artist_id) ORDER BY artist_id) AS repeat_number FROM artists) t WHERE t.repeat_number > 1 ORDER BY t.artist_id LIMIT 5;

-- check unique(users: user_id)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT users.*, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY user_id) AS repeat_number FROM users) t;

-- offending rows unique(users: user_id)
SELECT t.user_id, t.first_name, t.last_name, t.gender, t.level FROM (SELECT users.*, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY user_id) AS repeat_number FROM users) t WHERE t.repeat_number > 1 ORDER BY t.user_id LIMIT 5;

-- check unique(songplays: songplay_id)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT songplays.*, ROW_NUMBER() OVER (PARTITION BY songplay_id ORDER BY songplay_id) AS repeat_number FROM songplays) t;

-- offending rows unique(songplays: songplay_id)
SELECT t.songplay_id, t.start_time, t.user_id, t.level, t.song_id, t.artist_id, t.session_id, t.item_in_session, t.location, t.user_agent FROM (SELECT songplays.*, ROW_NUMBER() OVER (PARTITION BY songplay_id ORDER BY songplay_id) AS repeat_number FROM songplays) t WHERE t.repeat_number > 1 ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check unique(songplays: user_id, session_id, item_in_session)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT songplays.*, ROW_NUMBER() OVER (PARTITION BY user_id, session_id, item_in_session ORDER BY user_id, session_id, item_in_session) AS repeat_number FROM songplays) t;

-- offending rows unique(songplays: user_id, session_id, item_in_session)
SELECT t.songplay_id, t.start_time, t.user_id, t.level, t.song_id, t.artist_id, t.session_id, t.item_in_session, t.location, t.user_agent FROM (SELECT songplays.*, ROW_NUMBER() OVER (PARTITION BY user_id, session_id, item_in_session ORDER BY user_id, session_id, item_in_session) AS repeat_number FROM songplays) t WHERE t.repeat_number > 1 ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check unique(time: start_time)
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT time.*, ROW_NUMBER() OVER (PARTITION BY start_time ORDER BY start_time) AS repeat_number FROM time) t;

-- offending rows unique(time: start_time)
SELECT t.start_time, t.hour, t.day, t.week, t.month, t.year, t.weekday FROM (SELECT time.*, ROW_NUMBER() OVER (PARTITION BY start_time ORDER BY start_time) AS repeat_number FROM time) t WHERE t.repeat_number > 1 ORDER BY t.start_time LIMIT 5;

-- check relationship(songplays(user_id) in users(user_id))
SELECT COUNT(*), COUNT(CASE WHEN t.user_id IS NOT NULL AND p.user_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT user_id FROM users) p ON t.user_id = p.user_id;

-- offending rows relationship(songplays(user_id) in users(user_id))
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t LEFT JOIN (SELECT DISTINCT user_id FROM users) p ON t.user_id = p.user_id WHERE t.user_id IS NOT NULL AND p.user_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(song_id) in songs(song_id))
SELECT COUNT(*), COUNT(CASE WHEN t.song_id IS NOT NULL AND p.song_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id));

-- offending rows relationship(songplays(song_id) in songs(song_id))
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.song_id FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) WHERE t.song_id IS NOT NULL AND p.song_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(artist_id) in artists(artist_id))
SELECT COUNT(*), COUNT(CASE WHEN t.artist_id IS NOT NULL AND p.artist_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id));

-- offending rows relationship(songplays(artist_id) in artists(artist_id))
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.artist_id FROM songplays t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE t.artist_id IS NOT NULL AND p.artist_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(song_id, artist_id) in songs(song_id, artist_id))
SELECT COUNT(*), COUNT(CASE WHEN t.song_id IS NOT NULL AND t.artist_id IS NOT NULL AND p.song_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length, artist_id, LENGTH(artist_id) AS artist_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) AND (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id));

-- offending rows relationship(songplays(song_id, artist_id) in songs(song_id, artist_id))
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.song_id, t.artist_id FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length, artist_id, LENGTH(artist_id) AS artist_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) AND (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE t.song_id IS NOT NULL AND t.artist_id IS NOT NULL AND p.song_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(start_time) in time(start_time))
SELECT COUNT(*), COUNT(CASE WHEN t.start_time IS NOT NULL AND p.start_time IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT start_time FROM time) p ON t.start_time = p.start_time;

-- offending rows relationship(songplays(start_time) in time(start_time))
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.start_time FROM songplays t LEFT JOIN (SELECT DISTINCT start_time FROM time) p ON t.start_time = p.start_time WHERE t.start_time IS NOT NULL AND p.start_time IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songs(artist_id) in artists(artist_id))
SELECT COUNT(*), COUNT(CASE WHEN t.artist_id IS NOT NULL AND p.artist_id IS NULL THEN 1 END) FROM songs t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id));

-- offending rows relationship(songs(artist_id) in artists(artist_id))
SELECT t.song_id, t.artist_id FROM songs t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE t.artist_id IS NOT NULL AND p.artist_id IS NULL ORDER BY t.song_id LIMIT 5;

-- offending rows accepted_values(songplays.level: free, paid)
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.level FROM songplays t WHERE t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows accepted_values(users.level: free, paid)
SELECT t.user_id, t.level FROM users t WHERE t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) ORDER BY t.user_id LIMIT 5;

-- offending rows accepted_values(time.hour: 0-23)
SELECT t.start_time, t.hour FROM time t WHERE (t.hour < 0 OR t.hour > 23) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.day: 1-31)
SELECT t.start_time, t.day FROM time t WHERE (t.day < 1 OR t.day > 31) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.week: 1-53)
SELECT t.start_time, t.week FROM time t WHERE (t.week < 1 OR t.week > 53) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.month: 1-12)
SELECT t.start_time, t.month FROM time t WHERE (t.month < 1 OR t.month > 12) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.weekday: 0-6)
SELECT t.start_time, t.weekday FROM time t WHERE (t.weekday < 0 OR t.weekday > 6) ORDER BY t.start_time LIMIT 5;

-- check reconciliation(songplays = distinct NextSong plays in staging_events)
SELECT plays.n, ABS(kept.n - plays.n) FROM (SELECT COUNT(*) AS n FROM (SELECT DISTINCT user_id, session_id, item_in_session FROM staging_events WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL) staged) plays, (SELECT COUNT(*) AS n FROM songplays) kept;

-- offending rows reconciliation(songplays = distinct NextSong plays in staging_events)
WITH plays AS (SELECT DISTINCT user_id, session_id, item_in_session FROM staging_events WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL) SELECT COALESCE(k.user_id, p.user_id) AS user_id, COALESCE(k.session_id, p.session_id) AS session_id, COALESCE(k.item_in_session, p.item_in_session) AS item_in_session, CASE WHEN p.user_id IS NULL THEN 'staged, not in songplays' ELSE 'in songplays, not staged' END AS problem FROM plays k FULL JOIN songplays p ON k.user_id = p.user_id AND k.session_id = p.session_id AND k.item_in_session = p.item_in_session WHERE k.user_id IS NULL OR p.user_id IS NULL ORDER BY 1, 2, 3 LIMIT 5;

-- row checks of users after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.user_id IS NULL THEN 1 END), COUNT(CASE WHEN t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) THEN 1 END) FROM users t WHERE (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL));

-- row checks of songplays after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.songplay_id IS NULL THEN 1 END), COUNT(CASE WHEN t.user_id IS NULL THEN 1 END), COUNT(CASE WHEN t.session_id IS NULL THEN 1 END), COUNT(CASE WHEN t.item_in_session IS NULL THEN 1 END), COUNT(CASE WHEN t.start_time IS NULL THEN 1 END), COUNT(CASE WHEN t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) THEN 1 END) FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from));

-- row checks of time after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.start_time IS NULL THEN 1 END), COUNT(CASE WHEN (t.hour < 0 OR t.hour > 23) THEN 1 END), COUNT(CASE WHEN (t.day < 1 OR t.day > 31) THEN 1 END), COUNT(CASE WHEN (t.week < 1 OR t.week > 53) THEN 1 END), COUNT(CASE WHEN (t.month < 1 OR t.month > 12) THEN 1 END), COUNT(CASE WHEN (t.weekday < 0 OR t.weekday > 6) THEN 1 END) FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from));

-- offending rows not_null(users.user_id) after a merge
SELECT t.user_id FROM users t WHERE (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)) AND t.user_id IS NULL ORDER BY t.user_id LIMIT 5;

-- offending rows not_null(songplays.songplay_id) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.songplay_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.user_id) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.user_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.session_id) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.session_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.item_in_session) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.item_in_session IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(songplays.start_time) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.start_time FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.start_time IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows not_null(time.start_time) after a merge
SELECT t.start_time FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.start_time IS NULL ORDER BY t.start_time LIMIT 5;

-- check unique(users: user_id) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT users.*, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY user_id) AS repeat_number FROM users) t WHERE (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL));

-- offending rows unique(users: user_id) after a merge
SELECT t.user_id, t.first_name, t.last_name, t.gender, t.level FROM (SELECT users.*, ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY user_id) AS repeat_number FROM users) t WHERE (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)) AND t.repeat_number > 1 ORDER BY t.user_id LIMIT 5;

-- check unique(time: start_time) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.repeat_number > 1 THEN 1 END) FROM (SELECT time.*, ROW_NUMBER() OVER (PARTITION BY start_time ORDER BY start_time) AS repeat_number FROM time) t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from));

-- offending rows unique(time: start_time) after a merge
SELECT t.start_time, t.hour, t.day, t.week, t.month, t.year, t.weekday FROM (SELECT time.*, ROW_NUMBER() OVER (PARTITION BY start_time ORDER BY start_time) AS repeat_number FROM time) t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.repeat_number > 1 ORDER BY t.start_time LIMIT 5;

-- check relationship(songplays(user_id) in users(user_id)) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.user_id IS NOT NULL AND p.user_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT user_id FROM users) p ON t.user_id = p.user_id WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) OR (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)));

-- offending rows relationship(songplays(user_id) in users(user_id)) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session FROM songplays t LEFT JOIN (SELECT DISTINCT user_id FROM users) p ON t.user_id = p.user_id WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) OR (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL))) AND t.user_id IS NOT NULL AND p.user_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(song_id) in songs(song_id)) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.song_id IS NOT NULL AND p.song_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)));

-- offending rows relationship(songplays(song_id) in songs(song_id)) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.song_id FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from))) AND t.song_id IS NOT NULL AND p.song_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(artist_id) in artists(artist_id)) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.artist_id IS NOT NULL AND p.artist_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)));

-- offending rows relationship(songplays(artist_id) in artists(artist_id)) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.artist_id FROM songplays t LEFT JOIN (SELECT DISTINCT artist_id, LENGTH(artist_id) AS artist_id_length FROM artists) p ON (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from))) AND t.artist_id IS NOT NULL AND p.artist_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(song_id, artist_id) in songs(song_id, artist_id)) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.song_id IS NOT NULL AND t.artist_id IS NOT NULL AND p.song_id IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length, artist_id, LENGTH(artist_id) AS artist_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) AND (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)));

-- offending rows relationship(songplays(song_id, artist_id) in songs(song_id, artist_id)) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.song_id, t.artist_id FROM songplays t LEFT JOIN (SELECT DISTINCT song_id, LENGTH(song_id) AS song_id_length, artist_id, LENGTH(artist_id) AS artist_id_length FROM songs) p ON (t.song_id = p.song_id AND LENGTH(t.song_id) = LENGTH(p.song_id)) AND (t.artist_id = p.artist_id AND LENGTH(t.artist_id) = LENGTH(p.artist_id)) WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from))) AND t.song_id IS NOT NULL AND t.artist_id IS NOT NULL AND p.song_id IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- check relationship(songplays(start_time) in time(start_time)) after a merge
SELECT COUNT(*), COUNT(CASE WHEN t.start_time IS NOT NULL AND p.start_time IS NULL THEN 1 END) FROM songplays t LEFT JOIN (SELECT DISTINCT start_time FROM time) p ON t.start_time = p.start_time WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)));

-- offending rows relationship(songplays(start_time) in time(start_time)) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.start_time FROM songplays t LEFT JOIN (SELECT DISTINCT start_time FROM time) p ON t.start_time = p.start_time WHERE ((t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from))) AND t.start_time IS NOT NULL AND p.start_time IS NULL ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows accepted_values(songplays.level: free, paid) after a merge
SELECT t.songplay_id, t.user_id, t.session_id, t.item_in_session, t.level FROM songplays t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) ORDER BY t.songplay_id, t.user_id, t.session_id, t.item_in_session LIMIT 5;

-- offending rows accepted_values(users.level: free, paid) after a merge
SELECT t.user_id, t.level FROM users t WHERE (t.user_id IS NULL OR t.user_id IN (SELECT user_id FROM incoming_events WHERE user_id IS NOT NULL)) AND t.level IS NOT NULL AND NOT ((t.level = 'free' AND LENGTH(t.level) = LENGTH('free')) OR (t.level = 'paid' AND LENGTH(t.level) = LENGTH('paid'))) ORDER BY t.user_id LIMIT 5;

-- offending rows accepted_values(time.hour: 0-23) after a merge
SELECT t.start_time, t.hour FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND (t.hour < 0 OR t.hour > 23) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.day: 1-31) after a merge
SELECT t.start_time, t.day FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND (t.day < 1 OR t.day > 31) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.week: 1-53) after a merge
SELECT t.start_time, t.week FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND (t.week < 1 OR t.week > 53) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.month: 1-12) after a merge
SELECT t.start_time, t.month FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND (t.month < 1 OR t.month > 12) ORDER BY t.start_time LIMIT 5;

-- offending rows accepted_values(time.weekday: 0-6) after a merge
SELECT t.start_time, t.weekday FROM time t WHERE (t.start_time IS NULL OR t.start_time >= (SELECT start_time FROM merge_from)) AND (t.weekday < 0 OR t.weekday > 6) ORDER BY t.start_time LIMIT 5;

-- check reconciliation(songplays = distinct NextSong plays in staging_events) after a merge
SELECT plays.n, ABS(kept.n - plays.n) FROM (SELECT plays_before - plays_replaced + incoming_plays AS n FROM merge_from) plays, (SELECT COUNT(*) AS n FROM songplays) kept;

-- offending rows reconciliation(songplays = distinct NextSong plays in staging_events) after a merge
WITH plays AS (SELECT DISTINCT user_id, session_id, item_in_session FROM staging_events WHERE (page = 'NextSong' AND LENGTH(page) = LENGTH('NextSong')) AND user_id IS NOT NULL) SELECT COALESCE(k.user_id, p.user_id) AS user_id, COALESCE(k.session_id, p.session_id) AS session_id, COALESCE(k.item_in_session, p.item_in_session) AS item_in_session, CASE WHEN p.user_id IS NULL THEN 'staged, not in songplays' ELSE 'in songplays, not staged' END AS problem FROM plays k FULL JOIN songplays p ON k.user_id = p.user_id AND k.session_id = p.session_id AND k.item_in_session = p.item_in_session WHERE k.user_id IS NULL OR p.user_id IS NULL ORDER BY 1, 2, 3 LIMIT 5;

-- end merge
DROP TABLE merge_from;

-- analysis both_levels
SELECT u.user_id, u.first_name, u.last_name, p.plays
FROM (SELECT user_id, COUNT(*) AS plays FROM songplays GROUP BY user_id
      HAVING COUNT(DISTINCT CASE WHEN level IN ('free', 'paid') AND LENGTH(level) = 4
                                 THEN level END) = 2) p
JOIN users u ON u.user_id = p.user_id
ORDER BY p.plays DESC, u.user_id
LIMIT 5;

-- analysis users_by_level
SELECT level, COUNT(*) AS users FROM users GROUP BY level ORDER BY level;

-- analysis song_count
SELECT COUNT(*) AS songs FROM songs;

-- analysis artist_count
SELECT COUNT(*) AS artists FROM artists;

-- analysis top_users
SELECT u.user_id, u.first_name, u.last_name, u.level, p.plays
FROM (SELECT user_id, COUNT(*) AS plays FROM songplays GROUP BY user_id) p
JOIN users u ON u.user_id = p.user_id
ORDER BY p.plays DESC, u.user_id
LIMIT 5;

-- analysis plays_by_year
SELECT t.year, TO_CHAR(MIN(sp.start_time), 'YYYY-MM-DD') AS first_day, TO_CHAR(MAX(sp.start_time), 'YYYY-MM-DD') AS last_day, COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.year
ORDER BY t.year;

-- analysis plays_by_day
SELECT t.day, COUNT(*) AS plays FROM songplays sp JOIN time t ON t.start_time = sp.start_time GROUP BY t.day ORDER BY t.day;

-- analysis plays_by_week
SELECT iso_year, week, TO_CHAR(MIN(start_time), 'YYYY-MM-DD') AS first_day, TO_CHAR(MAX(start_time), 'YYYY-MM-DD') AS last_day,
       COUNT(*) AS plays
FROM (SELECT CASE WHEN t.month = 12 AND t.week = 1 THEN t.year + 1
                  WHEN t.month = 1 AND t.week >= 52 THEN t.year - 1
                  ELSE t.year END AS iso_year,
             t.week, sp.start_time
      FROM songplays sp JOIN time t ON t.start_time = sp.start_time) weeks
GROUP BY iso_year, week
ORDER BY iso_year, week;

-- analysis plays_by_month
SELECT t.year, t.month, TO_CHAR(MIN(sp.start_time), 'YYYY-MM-DD') AS first_day, TO_CHAR(MAX(sp.start_time), 'YYYY-MM-DD') AS last_day, COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.year, t.month
ORDER BY t.year, t.month;

-- analysis plays_by_hour
SELECT t.hour, COUNT(*) AS plays FROM songplays sp JOIN time t ON t.start_time = sp.start_time GROUP BY t.hour ORDER BY t.hour;

-- analysis plays_by_weekday
SELECT t.weekday,
       CASE t.weekday WHEN 0 THEN 'Sunday' WHEN 1 THEN 'Monday' WHEN 2 THEN 'Tuesday'
                      WHEN 3 THEN 'Wednesday' WHEN 4 THEN 'Thursday' WHEN 5 THEN 'Friday'
                      ELSE 'Saturday' END AS day_name,
       COUNT(*) AS plays
FROM songplays sp JOIN time t ON t.start_time = sp.start_time
GROUP BY t.weekday
ORDER BY t.weekday;

-- analysis top_artists
SELECT a.artist_id, a.name, p.plays
FROM (SELECT artist_id, COUNT(*) AS plays FROM songplays WHERE artist_id IS NOT NULL
      GROUP BY artist_id, LENGTH(artist_id)) p
JOIN artists a ON (a.artist_id = p.artist_id AND LENGTH(a.artist_id) = LENGTH(p.artist_id))
ORDER BY p.plays DESC, a.artist_id, LENGTH(a.artist_id)
LIMIT 5;

-- analysis top_songs
SELECT s.song_id, s.title, a.name AS artist, p.plays
FROM (SELECT song_id, COUNT(*) AS plays FROM songplays WHERE song_id IS NOT NULL
      GROUP BY song_id, LENGTH(song_id)) p
JOIN songs s ON (s.song_id = p.song_id AND LENGTH(s.song_id) = LENGTH(p.song_id))
LEFT JOIN artists a ON (a.artist_id = s.artist_id AND LENGTH(a.artist_id) = LENGTH(s.artist_id))
ORDER BY p.plays DESC, s.song_id, LENGTH(s.song_id)
LIMIT 5;
