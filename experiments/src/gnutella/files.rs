//! Shared files and their transfer: the seeded catalogue (names, sizes, content, SHA-1), each
//! node's [`Library`] (genuine files, a poisoner's decoys, a free rider's nothing), the query
//! match rule, and HTTP serving as Gnutella does it (`GET /get/<index>/<name>` and HUGE's
//! `GET /uri-res/N2R?urn:sha1:<base32>` on the Gnutella port). It owns file bytes; it never
//! stores them: content is computed from a seed at any offset, so 450 leaves cost no memory.

use std::io;
use std::time::Duration;

use onionlab_crawler::dht::space::SplitMix64;
use onionlab_crawler::infohash::InfoHash;
use sha1::{Digest, Sha1};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::config::{DecoyKind, FileConfig};

/// The words titles are made of (three distinct ones each, plus an extension).
const WORDS: [&str; 40] = [
    "amber", "river", "dance", "night", "silver", "morning", "echo", "garden", "storm", "velvet", "ocean", "winter",
    "shadow", "golden", "paper", "summer", "thunder", "crystal", "forest", "lonely", "electric", "desert", "harbor",
    "midnight", "copper", "falcon", "lantern", "meadow", "orbit", "prairie", "quartz", "rocket", "saffron", "tundra",
    "violet", "willow", "zephyr", "canyon", "ember", "glacier",
];
const EXTENSIONS: [&str; 4] = ["mp3", "ogg", "avi", "txt"];

/// The SplitMix64 increment: output n of a stream seeded s is `SplitMix64::new(s + n·GAMMA)`'s
/// first output, which makes content addressable at any offset.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Bytes generated and written per step when serving.
const CHUNK: usize = 16 << 10;

/// The longest HTTP request head (request line and headers) a node reads.
pub const MAX_REQUEST_HEAD: usize = 8 << 10;

/// One title of the catalogue; rank 0 is the most popular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueFile {
    /// Popularity rank.
    pub rank: usize,
    /// File name, like `amber river dance.mp3`.
    pub name: String,
    /// Size in bytes.
    pub size: u32,
    /// SHA-1 of the content.
    pub sha1: [u8; 20],
    /// Seed of the content stream.
    pub content_seed: u64,
}

/// Every title, with its popularity weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue {
    files: Vec<CatalogueFile>,
    /// Cumulative Zipf weights, for picking titles by popularity.
    cumulative: Vec<f64>,
}

impl Catalogue {
    /// The catalogue of `config`, from `rng`.
    pub fn generate(config: &FileConfig, rng: &mut SplitMix64) -> Catalogue {
        let mut names = std::collections::BTreeSet::new();
        let mut files = Vec::with_capacity(config.catalogue);
        let mut total = 0.0;
        let mut cumulative = Vec::with_capacity(config.catalogue);
        while files.len() < config.catalogue {
            let name = title(rng, files.len());
            if !names.insert(name.clone()) {
                continue;
            }
            let rank = files.len();
            let span = u64::from(config.max_size - config.min_size) + 1;
            let size = config.min_size + rng.below(span) as u32;
            let content_seed = rng.next_u64();
            files.push(CatalogueFile {
                rank,
                name,
                size,
                sha1: content_sha1(content_seed, size),
                content_seed,
            });
            total += 1.0 / ((rank + 1) as f64).powf(config.zipf_exponent);
            cumulative.push(total);
        }
        Catalogue { files, cumulative }
    }

    /// The titles, by rank.
    pub fn files(&self) -> &[CatalogueFile] {
        &self.files
    }

    /// `count` distinct titles picked by popularity (ranks, in pick order).
    pub fn pick(&self, count: usize, rng: &mut SplitMix64) -> Vec<usize> {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let mut picked = Vec::with_capacity(count);
        // Rejection of repeats; the fallback walk keeps it bounded when the weights are steep.
        for _ in 0..count * 20 {
            if picked.len() == count {
                break;
            }
            let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
            let rank = self.cumulative.partition_point(|&c| c <= u).min(self.files.len() - 1);
            if !picked.contains(&rank) {
                picked.push(rank);
            }
        }
        for rank in 0..self.files.len() {
            if picked.len() == count {
                break;
            }
            if !picked.contains(&rank) {
                picked.push(rank);
            }
        }
        picked
    }
}

/// Title number `n`: three distinct words and an extension.
fn title(rng: &mut SplitMix64, n: usize) -> String {
    let mut words: Vec<&str> = Vec::with_capacity(3);
    while words.len() < 3 {
        let w = WORDS[rng.below(WORDS.len() as u64) as usize];
        if !words.contains(&w) {
            words.push(w);
        }
    }
    format!("{}.{}", words.join(" "), EXTENSIONS[n % EXTENSIONS.len()])
}

/// `len` content bytes of the stream `seed` from `offset` on.
pub fn content_at(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut pos = offset;
    while out.len() < len {
        let word = SplitMix64::new(seed.wrapping_add((pos / 8).wrapping_mul(GAMMA))).next_u64();
        let bytes = word.to_le_bytes();
        let skip = (pos % 8) as usize;
        let take = (8 - skip).min(len - out.len());
        out.extend_from_slice(&bytes[skip..skip + take]);
        pos += take as u64;
    }
    out
}

/// SHA-1 of the first `size` bytes of the stream `seed`.
pub fn content_sha1(seed: u64, size: u32) -> [u8; 20] {
    let mut hasher = Sha1::new();
    let mut offset = 0u64;
    while offset < u64::from(size) {
        let len = CHUNK.min((u64::from(size) - offset) as usize);
        hasher.update(content_at(seed, offset, len));
        offset += len as u64;
    }
    hasher.finalize().into()
}

/// `urn:sha1:` and the 32 base32 characters (HUGE 0.93).
pub fn sha1_urn(sha1: &[u8; 20]) -> String {
    format!("urn:sha1:{}", InfoHash(*sha1).to_base32())
}

/// The keywords of a name or of search criteria: runs of letters and digits, lowercased (the
/// words QRP hashes and a query must all match).
pub fn keywords(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        if !out.contains(&word) {
            out.push(word);
        }
    }
    out
}

/// One file a node offers: what its hits advertise, and what a download of it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    /// The index in this node's hits and in `/get/<index>/<name>`.
    pub index: u32,
    /// The advertised name.
    pub name: String,
    /// The advertised size.
    pub size: u32,
    /// The advertised SHA-1.
    pub sha1: [u8; 20],
    /// The catalogue title this file is (or claims to be).
    pub rank: usize,
    /// Seed of the bytes served (the title's for a genuine file, another for a decoy).
    pub content_seed: u64,
    /// Bytes served (the advertised size, except for a short decoy).
    pub served_size: u32,
}

impl SharedFile {
    /// Whether what is served is what is advertised.
    pub fn genuine(&self) -> bool {
        self.served_size == self.size && content_sha1(self.content_seed, self.served_size) == self.sha1
    }

    /// Whether a query matches: its `urn:sha1`, or else every keyword of its criteria.
    pub fn matches(&self, criteria: &[String], sha1: Option<&[u8; 20]>) -> bool {
        match sha1 {
            Some(sha1) => *sha1 == self.sha1,
            None => {
                let mine = keywords(&self.name);
                !criteria.is_empty() && criteria.iter().all(|k| mine.contains(k))
            }
        }
    }
}

/// What one node shares and whether it uploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Library {
    /// The files, indices 1, 2, ...
    pub files: Vec<SharedFile>,
    /// Whether downloads are served (a free rider answers 503 to all).
    pub uploads: bool,
}

impl Library {
    /// Genuine copies of the catalogue titles `ranks`.
    pub fn genuine(catalogue: &Catalogue, ranks: &[usize]) -> Library {
        let files = ranks
            .iter()
            .enumerate()
            .map(|(i, &rank)| {
                let t = &catalogue.files()[rank];
                SharedFile {
                    index: i as u32 + 1,
                    name: t.name.clone(),
                    size: t.size,
                    sha1: t.sha1,
                    rank,
                    content_seed: t.content_seed,
                    served_size: t.size,
                }
            })
            .collect();
        Library { files, uploads: true }
    }

    /// A poisoner's decoys of the titles ranked `0..targets`: their names, sizes and hashes,
    /// with bytes from `decoy_seed`.
    pub fn decoys(catalogue: &Catalogue, targets: usize, kind: DecoyKind, decoy_seed: u64) -> Library {
        let files = catalogue.files()[..targets.min(catalogue.files().len())]
            .iter()
            .enumerate()
            .map(|(i, t)| SharedFile {
                index: i as u32 + 1,
                name: t.name.clone(),
                size: t.size,
                sha1: t.sha1,
                rank: t.rank,
                content_seed: decoy_seed ^ (t.rank as u64).wrapping_mul(GAMMA),
                served_size: match kind {
                    DecoyKind::WrongContent => t.size,
                    DecoyKind::WrongSize => t.size / 2,
                },
            })
            .collect();
        Library { files, uploads: true }
    }

    /// Nothing shared, nothing served.
    pub fn free_rider() -> Library {
        Library {
            files: Vec::new(),
            uploads: false,
        }
    }

    /// The files a query matches (at most 255, what one QueryHit carries).
    pub fn search(&self, criteria: &[u8], sha1: Option<&[u8; 20]>) -> Vec<&SharedFile> {
        let words = keywords(&String::from_utf8_lossy(criteria));
        self.files
            .iter()
            .filter(|f| f.matches(&words, sha1))
            .take(usize::from(u8::MAX))
            .collect()
    }

    /// The file a request names.
    pub fn lookup(&self, request: &FileRequest) -> Option<&SharedFile> {
        match request {
            FileRequest::ByIndex { index, name } => self.files.iter().find(|f| f.index == *index && f.name == *name),
            FileRequest::ByUrn(sha1) => self.files.iter().find(|f| f.sha1 == *sha1),
        }
    }
}

/// A download request, from its request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRequest {
    /// `GET /get/<index>/<name>` (name percent-decoded).
    ByIndex {
        /// The index from the hit.
        index: u32,
        /// The name from the hit.
        name: String,
    },
    /// `GET /uri-res/N2R?urn:sha1:<base32>`.
    ByUrn([u8; 20]),
}

impl FileRequest {
    /// The request path for this request (names percent-encoded).
    pub fn path(&self) -> String {
        match self {
            FileRequest::ByIndex { index, name } => format!("/get/{index}/{}", percent_encode(name)),
            FileRequest::ByUrn(sha1) => format!("/uri-res/N2R?{}", sha1_urn(sha1)),
        }
    }
}

/// Why an HTTP request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is not `GET <path> HTTP/1.x` with a path this server knows.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The head did not end within [`MAX_REQUEST_HEAD`] bytes.
    #[error("request head longer than {MAX_REQUEST_HEAD} bytes")]
    HeadTooLong,
    /// The client sent nothing complete in time.
    #[error("request head timed out")]
    Timeout,
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(String),
}

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e.to_string())
    }
}

/// Reads the request line of a head (headers are read and ignored).
pub fn parse_request(head: &[u8]) -> Result<FileRequest, HttpError> {
    let line_end = head
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(HttpError::BadRequest("no request line"))?;
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| HttpError::BadRequest("request line is not UTF-8"))?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some("GET"), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::BadRequest("not GET <target> HTTP/1.x"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::BadRequest("not HTTP/1.x"));
    }
    if let Some(rest) = target.strip_prefix("/get/") {
        let (index, name) = rest
            .split_once('/')
            .ok_or(HttpError::BadRequest("no name after the index"))?;
        let index = index.parse().map_err(|_| HttpError::BadRequest("bad index"))?;
        let name = percent_decode(name).ok_or(HttpError::BadRequest("bad percent-encoding"))?;
        return Ok(FileRequest::ByIndex { index, name });
    }
    if let Some(urn) = target.strip_prefix("/uri-res/N2R?") {
        let base32 = urn
            .get(..9)
            .filter(|p| p.eq_ignore_ascii_case("urn:sha1:"))
            .and_then(|_| urn.get(9..))
            .ok_or(HttpError::BadRequest("not a urn:sha1"))?;
        if base32.len() != 32 {
            return Err(HttpError::BadRequest("a urn:sha1 has 32 base32 characters"));
        }
        let hash = InfoHash::parse(base32).map_err(|_| HttpError::BadRequest("bad base32"))?;
        return Ok(FileRequest::ByUrn(hash.0));
    }
    Err(HttpError::BadRequest("unknown path"))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// What one HTTP exchange did, for the node's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A whole body went out.
    Upload,
    /// A 4xx or 5xx went out.
    Refused,
}

/// Serves one request on `stream`, whose first bytes (`prefix`) were read to tell HTTP from
/// Gnutella, then closes. The head must arrive within `head_timeout`; each body write gets
/// `write_timeout`.
pub(crate) async fn serve_http(
    mut stream: TcpStream,
    prefix: Vec<u8>,
    library: &Library,
    server: &str,
    head_timeout: Duration,
    write_timeout: Duration,
) -> Result<Served, HttpError> {
    let head = timeout(head_timeout, read_head(&mut stream, prefix))
        .await
        .map_err(|_| HttpError::Timeout)??;
    let (status, file) = match parse_request(&head) {
        Err(_) => ("400 Bad Request", None),
        Ok(_) if !library.uploads => ("503 Service Unavailable", None),
        Ok(request) => match library.lookup(&request) {
            Some(file) => ("200 OK", Some(file)),
            None => ("404 Not Found", None),
        },
    };
    let Some(file) = file else {
        let response =
            format!("HTTP/1.1 {status}\r\nServer: {server}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        write_timed(&mut stream, response.as_bytes(), write_timeout).await?;
        return Ok(Served::Refused);
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nServer: {server}\r\nContent-Type: application/binary\r\nContent-Length: {}\r\n\
         X-Gnutella-Content-URN: {}\r\nConnection: close\r\n\r\n",
        file.served_size,
        sha1_urn(&file.sha1)
    );
    write_timed(&mut stream, response.as_bytes(), write_timeout).await?;
    let mut offset = 0u64;
    while offset < u64::from(file.served_size) {
        let len = CHUNK.min((u64::from(file.served_size) - offset) as usize);
        write_timed(&mut stream, &content_at(file.content_seed, offset, len), write_timeout).await?;
        offset += len as u64;
    }
    let _ = stream.shutdown().await;
    Ok(Served::Upload)
}

async fn write_timed(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> Result<(), HttpError> {
    timeout(limit, stream.write_all(bytes))
        .await
        .map_err(|_| HttpError::Timeout)??;
    Ok(())
}

async fn read_head(stream: &mut TcpStream, mut head: Vec<u8>) -> Result<Vec<u8>, HttpError> {
    let mut buf = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_HEAD {
            return Err(HttpError::HeadTooLong);
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(HttpError::BadRequest("connection closed inside the head"));
        }
        head.extend_from_slice(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::generate(&FileConfig::default(), &mut SplitMix64::new(7))
    }

    #[test]
    fn content_is_addressable_at_any_offset() {
        let whole = content_at(42, 0, 100);
        assert_eq!(content_at(42, 13, 50), whole[13..63]);
        assert_ne!(content_at(43, 0, 100), whole);
        let mut hasher = Sha1::new();
        hasher.update(content_at(42, 0, 40_000));
        assert_eq!(content_sha1(42, 40_000), <[u8; 20]>::from(hasher.finalize()));
    }

    #[test]
    fn catalogue_is_seeded_and_popularity_is_skewed() {
        let (a, b) = (catalogue(), catalogue());
        assert_eq!(a, b);
        let names: std::collections::BTreeSet<_> = a.files().iter().map(|f| &f.name).collect();
        assert_eq!(names.len(), 200);
        let mut rng = SplitMix64::new(3);
        let mut top = 0;
        for _ in 0..200 {
            let picks = a.pick(8, &mut rng);
            let distinct: std::collections::BTreeSet<_> = picks.iter().collect();
            assert_eq!(distinct.len(), 8);
            top += picks.iter().filter(|&&r| r < 10).count();
        }
        // Ten titles of 200 would be 5% of picks if uniform; Zipf(1) gives them far more.
        assert!(top > 200 * 8 / 5, "{top}");
    }

    #[test]
    fn libraries_match_queries_and_decoys_lie() {
        let c = catalogue();
        let lib = Library::genuine(&c, &[0, 1]);
        let first = &c.files()[0];
        let words: Vec<&str> = first.name.split(' ').collect();
        assert_eq!(
            lib.search(words[0].to_uppercase().as_bytes(), None)
                .first()
                .unwrap()
                .rank,
            0
        );
        assert_eq!(lib.search(b"", Some(&first.sha1)).len(), 1);
        assert!(lib.search(b"", None).is_empty());
        assert!(lib.search(b"nosuchword", None).is_empty());
        assert!(lib.files.iter().all(SharedFile::genuine));
        for kind in [DecoyKind::WrongContent, DecoyKind::WrongSize] {
            let decoys = Library::decoys(&c, 3, kind, 99);
            assert_eq!(decoys.files.len(), 3);
            assert!(decoys.files.iter().all(|f| !f.genuine()));
            assert_eq!(decoys.files[0].sha1, first.sha1);
        }
        assert!(Library::free_rider().search(words[0].as_bytes(), None).is_empty());
    }

    #[test]
    fn requests_parse_and_paths_round_trip() {
        let by_index = FileRequest::ByIndex {
            index: 3,
            name: "amber river dance.mp3".into(),
        };
        let head = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", by_index.path());
        assert_eq!(parse_request(head.as_bytes()), Ok(by_index));
        let by_urn = FileRequest::ByUrn([7; 20]);
        let head = format!("GET {} HTTP/1.0\r\n\r\n", by_urn.path());
        assert_eq!(parse_request(head.as_bytes()), Ok(by_urn));
        for bad in [
            &b"POST /get/1/a HTTP/1.1\r\n\r\n"[..],
            b"GET /get/x/a HTTP/1.1\r\n\r\n",
            b"GET /get/1/%zz HTTP/1.1\r\n\r\n",
            b"GET /uri-res/N2R?urn:sha1:short HTTP/1.1\r\n\r\n",
            b"GET /etc/passwd HTTP/1.1\r\n\r\n",
            b"GET /get/1/a SPDY/3\r\n\r\n",
            b"\xff\xfe\r\n\r\n",
            b"no newline",
        ] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_head_is_parsed_or_refused(head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_request(&head);
        }

        #[test]
        fn every_request_path_parses_back(index in proptest::prelude::any::<u32>(), name in "\\PC{0,40}", sha1 in proptest::prelude::any::<[u8; 20]>()) {
            for request in [FileRequest::ByIndex { index, name: name.clone() }, FileRequest::ByUrn(sha1)] {
                let head = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", request.path());
                proptest::prop_assert_eq!(parse_request(head.as_bytes()), Ok(request));
            }
        }
    }
}
