//! Synthetic Sparkify data in exactly the source layout: song files partitioned by track-id
//! letters, one JSON-lines log file per day under `YYYY/MM/`, and the JSONPaths file. The data
//! has the traits that make the real set hard: plays of songs not in the catalogue and near
//! misses on duration, logged-out traffic with an empty `userId`, users who upgrade and
//! downgrade, several songs per artist, unicode and quotes in names. The same options always
//! give the same bytes, so the bundled `data/` sample can be checked against the generator.

use std::fs::{self, File};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{Days, NaiveDate};
use serde_json::{json, Value};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    pub songs: usize,
    pub events: usize,
    pub days: u32,
    pub seed: u64,
    pub out: PathBuf,
    /// Replace `song_data/` and `log_data/` when they already exist in `out`.
    pub force: bool,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct GenSummary {
    pub song_files: usize,
    pub log_files: usize,
    pub events: usize,
    pub bytes: u64,
}

/// SplitMix64: a tiny generator whose output is fixed by its definition here, so the bundled
/// sample stays reproducible whatever version of a random-number crate is around.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn code(&mut self, alphabet: &[u8], len: usize) -> String {
        (0..len).map(|_| self.pick(alphabet) as char).collect()
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ADJECTIVES: &[&str] = &[
    "Velvet", "Electric", "Silent", "Golden", "Midnight", "Crimson", "Wild", "Lonely", "Neon",
    "Paper", "Broken", "Sunday",
];
const NOUNS: &[&str] = &[
    "Foxes", "Rivers", "Engines", "Ghosts", "Hearts", "Pilots", "Tigers", "Echoes", "Kings",
    "Lanterns", "Sparrows", "Canyons",
];
const SPECIAL_ARTISTS: &[&str] = &[
    "Sigur Rós Tribute",
    "Beyoncé & The Señoritas",
    "Guns N' Petals",
    "\"Weird\" Al's Garage",
    "Mötorhead Jr.",
    "東京 Drift",
    "Zoë & the Zeppelins",
    "Los Niños de la Noche",
];
const TITLE_WORDS: &[&str] = &[
    "Love", "Night", "River", "Fire", "Dream", "Heart", "Road", "Rain", "Summer", "Light", "Ghost",
    "Home", "Gold", "Dance", "Stone", "Sky",
];
const SPECIAL_TITLES: &[&str] = &[
    "Don't Stop",
    "Café del Mar",
    "It's \"Over\"",
    "Ça Plane Pour Moi",
    "Niño Perdido",
    "Straße",
    "Back & Forth",
    "Señorita (Remix)",
];
const PLACES: &[(&str, f64, f64)] = &[
    ("London, England", 51.50632, -0.12714),
    ("Austin, TX", 30.26759, -97.74299),
    ("São Paulo, Brazil", -23.54894, -46.63882),
    ("Reykjavík, Iceland", 64.13548, -21.89541),
    ("Chicago, IL", 41.88415, -87.63241),
    ("Montréal, Québec", 45.51228, -73.55439),
    ("Tokyo, Japan", 35.68956, 139.69171),
    ("Nashville, TN", 36.16778, -86.77836),
];
const FIRST_NAMES: &[&str] = &[
    "Jayden", "Lily", "Zoë", "José", "Aleena", "Kevin", "Chloe", "Mohammad", "Tegan", "Jacob",
    "Ōta", "Rylan", "Sara", "Matthew", "Ava", "Cienna",
];
const LAST_NAMES: &[&str] = &[
    "Bell",
    "Koch",
    "Müller",
    "García",
    "Kirby",
    "Arellano",
    "Cuevas",
    "Rodriguez",
    "Levine",
    "O'Brien",
    "Klein",
    "Smith",
    "Nguyen",
    "Moore",
];
const USER_LOCATIONS: &[&str] = &[
    "Dallas-Fort Worth-Arlington, TX",
    "Tampa-St. Petersburg-Clearwater, FL",
    "San Francisco-Oakland-Hayward, CA",
    "Chicago-Naperville-Elgin, IL-IN-WI",
    "Portland-South Portland, ME",
    "Lansing-East Lansing, MI",
    "New York-Newark-Jersey City, NY-NJ-PA",
];
const USER_AGENTS: &[&str] = &[
    "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36\"",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "\"Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36\"",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.2; WOW64; Trident/6.0)",
    "\"Mozilla/5.0 (iPhone; CPU iPhone OS 7_1_2 like Mac OS X) AppleWebKit/537.51.2 (KHTML, like Gecko) Version/7.0 Mobile/11D257 Safari/9537.53\"",
];
/// Pages a logged-in user visits besides NextSong, with the HTTP method and status.
const USER_PAGES: &[(&str, &str, u16)] = &[
    ("Home", "GET", 200),
    ("Thumbs Up", "PUT", 307),
    ("Add to Playlist", "PUT", 200),
    ("Settings", "GET", 200),
    ("Thumbs Down", "PUT", 307),
    ("Help", "GET", 200),
    ("Error", "GET", 404),
];
const GUEST_PAGES: &[(&str, &str, u16)] = &[
    ("Home", "GET", 200),
    ("Login", "PUT", 307),
    ("About", "GET", 200),
    ("Help", "GET", 200),
];

/// The Redshift JSONPaths file for the event logs, as in the original dataset.
pub const LOG_JSONPATH: &str = r#"{
    "jsonpaths": [
        "$['artist']",
        "$['auth']",
        "$['firstName']",
        "$['gender']",
        "$['itemInSession']",
        "$['lastName']",
        "$['length']",
        "$['level']",
        "$['location']",
        "$['method']",
        "$['page']",
        "$['registration']",
        "$['sessionId']",
        "$['song']",
        "$['status']",
        "$['ts']",
        "$['userAgent']",
        "$['userId']"
    ]
}
"#;

struct Artist {
    id: String,
    name: String,
    place: Option<(&'static str, f64, f64)>,
    /// Some artists have a location but no coordinates.
    coordinates: bool,
}

struct Song {
    track: String,
    id: String,
    artist: usize,
    title: String,
    duration: f64,
    year: u32,
}

struct User {
    id: u32,
    first: &'static str,
    last: &'static str,
    gender: &'static str,
    level: &'static str,
    /// Day from which the level is the other one, for users who upgrade or downgrade.
    switch_day: Option<u32>,
    registration: i64,
    location: &'static str,
    agent: &'static str,
}

impl User {
    fn level_on(&self, day: u32) -> &'static str {
        match self.switch_day {
            Some(switch) if day >= switch => {
                if self.level == "free" {
                    "paid"
                } else {
                    "free"
                }
            }
            _ => self.level,
        }
    }
}

/// Five decimals, as durations appear in the Million Song Dataset.
fn round5(x: f64) -> f64 {
    (x * 100_000.0).round() / 100_000.0
}

fn make_artists(rng: &mut Rng, count: usize) -> Vec<Artist> {
    (0..count)
        .map(|_| {
            let name = if rng.chance(0.2) {
                rng.pick(SPECIAL_ARTISTS).to_string()
            } else if rng.chance(0.5) {
                format!("The {} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS))
            } else {
                format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS))
            };
            let place = rng.chance(0.6).then(|| rng.pick(PLACES));
            Artist {
                id: format!("AR{}", rng.code(ALNUM, 16)),
                name,
                place,
                coordinates: rng.chance(0.7),
            }
        })
        .collect()
}

fn make_songs(rng: &mut Rng, count: usize, artists: usize) -> Vec<Song> {
    (0..count)
        .map(|i| {
            // Every artist gets a first song before any gets a second.
            let artist = if i < artists {
                i
            } else {
                rng.below(artists as u64) as usize
            };
            let title = if rng.chance(0.15) {
                rng.pick(SPECIAL_TITLES).to_string()
            } else {
                format!("{} {}", rng.pick(TITLE_WORDS), rng.pick(TITLE_WORDS))
            };
            Song {
                track: format!("TR{}{}", rng.code(b"ABC", 3), rng.code(ALNUM, 13)),
                id: format!("SO{}", rng.code(ALNUM, 16)),
                artist,
                title,
                duration: round5(60.0 + rng.unit() * 480.0),
                year: if rng.chance(0.3) {
                    0
                } else {
                    1960 + rng.below(50) as u32
                },
            }
        })
        .collect()
}

fn make_users(rng: &mut Rng, count: usize, days: u32) -> Vec<User> {
    (0..count)
        .map(|i| {
            let level = if rng.chance(0.3) { "paid" } else { "free" };
            let switch_day = rng
                .chance(0.3)
                .then(|| 1 + rng.below(days.max(2) as u64 - 1) as u32);
            User {
                id: i as u32 + 2,
                first: rng.pick(FIRST_NAMES),
                last: rng.pick(LAST_NAMES),
                gender: if rng.chance(0.5) { "F" } else { "M" },
                level,
                switch_day,
                registration: 1_540_000_000_000 + rng.below(1_000_000_000) as i64,
                location: rng.pick(USER_LOCATIONS),
                agent: rng.pick(USER_AGENTS),
            }
        })
        .collect()
}

fn song_json(song: &Song, artist: &Artist) -> Value {
    let (location, latitude, longitude) = match artist.place {
        Some((place, lat, lon)) if artist.coordinates => (place, json!(lat), json!(lon)),
        Some((place, _, _)) => (place, Value::Null, Value::Null),
        None => ("", Value::Null, Value::Null),
    };
    json!({
        "num_songs": 1,
        "artist_id": artist.id,
        "artist_latitude": latitude,
        "artist_longitude": longitude,
        "artist_location": location,
        "artist_name": artist.name,
        "song_id": song.id,
        "title": song.title,
        "duration": song.duration,
        "year": song.year,
    })
}

/// One log event: the fields that vary; the rest come from the user or are null.
struct Event<'a> {
    ts: i64,
    session: u64,
    item: u32,
    page: &'a str,
    method: &'a str,
    status: u16,
    play: Option<(String, String, f64)>,
}

fn event_json(event: &Event<'_>, user: Option<(&User, &'static str)>) -> Value {
    let (artist, song, length) = match &event.play {
        Some((artist, song, length)) => (json!(artist), json!(song), json!(length)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    match user {
        Some((user, level)) => json!({
            "artist": artist,
            "auth": "Logged In",
            "firstName": user.first,
            "gender": user.gender,
            "itemInSession": event.item,
            "lastName": user.last,
            "length": length,
            "level": level,
            "location": user.location,
            "method": event.method,
            "page": event.page,
            "registration": user.registration as f64,
            "sessionId": event.session,
            "song": song,
            "status": event.status,
            "ts": event.ts,
            "userAgent": user.agent,
            "userId": user.id.to_string(),
        }),
        None => json!({
            "artist": Value::Null,
            "auth": "Logged Out",
            "firstName": Value::Null,
            "gender": Value::Null,
            "itemInSession": event.item,
            "lastName": Value::Null,
            "length": Value::Null,
            "level": "free",
            "location": Value::Null,
            "method": event.method,
            "page": event.page,
            "registration": Value::Null,
            "sessionId": event.session,
            "song": Value::Null,
            "status": event.status,
            "ts": event.ts,
            "userAgent": Value::Null,
            "userId": "",
        }),
    }
}

/// A play: mostly a catalogue song (sometimes with a duration a few milliseconds off), else a
/// near miss on duration, or a song the catalogue does not have.
fn make_play(rng: &mut Rng, songs: &[Song], artists: &[Artist]) -> (String, String, f64) {
    let song = &songs[rng.below(songs.len() as u64) as usize];
    let artist = artists[song.artist].name.clone();
    let roll = rng.unit();
    if roll < 0.80 {
        (artist, song.title.clone(), song.duration)
    } else if roll < 0.85 {
        let jitter = (rng.unit() - 0.5) * 0.008;
        (artist, song.title.clone(), round5(song.duration + jitter))
    } else if roll < 0.90 {
        (
            artist,
            song.title.clone(),
            round5(song.duration + 1.0 + rng.unit()),
        )
    } else {
        (
            format!("{} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS)),
            format!("{} {} (Live)", rng.pick(TITLE_WORDS), rng.pick(TITLE_WORDS)),
            round5(90.0 + rng.unit() * 300.0),
        )
    }
}

fn write(path: &Path, text: &str, summary: &mut GenSummary) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    summary.bytes += text.len() as u64;
    Ok(())
}

/// One day's events on their way to the day's file, which holds them in time order. Sessions
/// overlap in time, so the day is sorted before it is written; the lines wait in a scratch
/// file beside the logs and only their times and places stay in memory (24 bytes an event), so
/// memory stays small however many events a day has.
struct DaySpill {
    path: PathBuf,
    writer: BufWriter<File>,
    /// (time, offset in the scratch file, length) of each line, in the order generated.
    lines: Vec<(i64, u64, u32)>,
    written: u64,
}

impl DaySpill {
    fn create(log_root: &Path) -> Result<Self> {
        fs::create_dir_all(log_root)
            .with_context(|| format!("cannot create {}", log_root.display()))?;
        let path = log_root.join(".gen_data-day.scratch");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path,
            writer: BufWriter::with_capacity(1 << 20, file),
            lines: Vec::new(),
            written: 0,
        })
    }

    fn push(&mut self, ts: i64, line: &str) -> Result<()> {
        self.writer
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let len = u32::try_from(line.len()).context("an event line longer than 4 GiB")?;
        self.lines.push((ts, self.written, len));
        self.written += u64::from(len);
        Ok(())
    }

    /// Writes the day's lines to `path` in time order (a stable sort: events at the same
    /// millisecond keep the order they were generated in) and starts the next day. Returns the
    /// lines and bytes written.
    fn write_sorted(&mut self, path: &Path) -> Result<(usize, u64)> {
        self.writer
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.lines.sort_by_key(|(ts, _, _)| *ts);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let cannot_write = || format!("cannot write {}", path.display());
        let mut out =
            BufWriter::with_capacity(1 << 20, File::create(path).with_context(cannot_write)?);
        let scratch = self.writer.get_ref();
        let mut line = Vec::new();
        for &(_, offset, len) in &self.lines {
            line.resize(len as usize, 0);
            read_at(scratch, &mut line, offset)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            out.write_all(&line).with_context(cannot_write)?;
            out.write_all(b"\n").with_context(cannot_write)?;
        }
        out.flush().with_context(cannot_write)?;
        let counts = (self.lines.len(), self.written + self.lines.len() as u64);
        self.lines.clear();
        self.written = 0;
        self.writer
            .get_mut()
            .set_len(0)
            .with_context(cannot_write)?;
        self.writer
            .seek(SeekFrom::Start(0))
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(counts)
    }

    fn remove(self) -> Result<()> {
        drop(self.writer);
        fs::remove_file(&self.path)
            .with_context(|| format!("cannot remove {}", self.path.display()))
    }
}

/// Reads `buf.len()` bytes at `offset` without moving a shared cursor.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::Read;
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// Writes the dataset under `options.out`.
pub fn generate(options: &GenOptions) -> Result<GenSummary> {
    if options.songs == 0 || options.days == 0 {
        bail!("--songs and --days must be at least 1");
    }
    let song_root = options.out.join("song_data");
    let log_root = options.out.join("log_data");
    for root in [&song_root, &log_root] {
        if root.exists() {
            if !options.force {
                bail!(
                    "{} already exists: choose another --out or pass --force to replace it",
                    root.display()
                );
            }
            fs::remove_dir_all(root)
                .with_context(|| format!("cannot remove {}", root.display()))?;
        }
    }

    let mut rng = Rng(options.seed);
    let artists = make_artists(&mut rng, options.songs.div_ceil(3));
    let songs = make_songs(&mut rng, options.songs, artists.len());
    let users = make_users(&mut rng, (options.events / 40).max(4), options.days);
    let mut summary = GenSummary::default();

    for song in &songs {
        let record = song_json(song, &artists[song.artist]);
        let text = if rng.chance(0.15) {
            serde_json::to_string_pretty(&record)?
        } else {
            serde_json::to_string(&record)?
        };
        let path = song_root
            .join(&song.track[2..3])
            .join(&song.track[3..4])
            .join(&song.track[4..5])
            .join(format!("{}.json", song.track));
        write(&path, &text, &mut summary)?;
        summary.song_files += 1;
    }

    let first_day = NaiveDate::from_ymd_opt(2018, 11, 1).expect("valid date");
    let day_ms: i64 = 86_400_000;
    let first_ms = first_day
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp_millis();
    let mut session = 100 + rng.below(900);
    let mut day_file = DaySpill::create(&log_root)?;
    for day in 0..options.days {
        let mut budget = options.events / options.days as usize
            + usize::from((day as usize) < options.events % options.days as usize);
        while budget > 0 {
            session += 1 + rng.below(3);
            // Heavy users: the square skews picks towards the first users.
            let user = (!rng.chance(0.08))
                .then(|| &users[(rng.unit().powi(2) * users.len() as f64) as usize]);
            let length = if user.is_some() {
                1 + rng.below(25) as usize
            } else {
                1 + rng.below(3) as usize
            };
            let mut ts =
                first_ms + day as i64 * day_ms + rng.below(day_ms as u64 - 7_200_000) as i64;
            for item in 0..length.min(budget) {
                let (page, method, status, play) = match user {
                    Some(_) if rng.chance(0.8) => (
                        "NextSong",
                        "PUT",
                        200,
                        Some(make_play(&mut rng, &songs, &artists)),
                    ),
                    Some(_) => {
                        let (p, m, s) = rng.pick(USER_PAGES);
                        (p, m, s, None)
                    }
                    None => {
                        let (p, m, s) = rng.pick(GUEST_PAGES);
                        (p, m, s, None)
                    }
                };
                let step = play
                    .as_ref()
                    .map_or(5_000 + rng.below(55_000) as i64, |(_, _, len)| {
                        (len * 1000.0) as i64
                    });
                let event = Event {
                    ts,
                    session,
                    item: item as u32,
                    page,
                    method,
                    status,
                    play,
                };
                let record = event_json(&event, user.map(|u| (u, u.level_on(day))));
                day_file.push(ts, &serde_json::to_string(&record)?)?;
                ts += step;
            }
            budget -= length.min(budget);
        }
        let date = first_day + Days::new(day as u64);
        let path = log_root
            .join(date.format("%Y").to_string())
            .join(date.format("%m").to_string())
            .join(format!("{}-events.json", date.format("%Y-%m-%d")));
        let (lines, bytes) = day_file.write_sorted(&path)?;
        summary.events += lines;
        summary.bytes += bytes;
        summary.log_files += 1;
    }
    day_file.remove()?;
    write(
        &options.out.join("log_json_path.json"),
        LOG_JSONPATH,
        &mut summary,
    )?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_is_fixed_by_definition() {
        // First outputs of SplitMix64 seeded with 0, as published with the algorithm.
        let mut rng = Rng(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn users_switch_level_on_their_day() {
        let user = User {
            id: 2,
            first: "A",
            last: "B",
            gender: "F",
            level: "free",
            switch_day: Some(3),
            registration: 0,
            location: "",
            agent: "",
        };
        assert_eq!(user.level_on(2), "free");
        assert_eq!(user.level_on(3), "paid");
    }
}
