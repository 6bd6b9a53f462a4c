//! The flag server: the book's flag site (`/flags/{cc}/{cc}.gif` and `/flags/{cc}/metadata.json`
//! for 194 countries, 404 for everything else), with the book's DELAY and ERROR behaviours.
//!
//! It serves built-in images (one deterministic GIF per country, made with the `gif` encoder), or
//! a real flags folder (`--dir`, such as the unpacked `flags.zip`), never a file outside it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{web, App, HttpResponse, HttpServer};
use rand::Rng;

use crate::countries::COUNTRIES;
use crate::site::{Answer, Site};

/// What the server does besides serving flags.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Every response (404s included) waits a uniform time in this range.
    pub delay: Option<(Duration, Duration)>,
    /// Probability (0 to 1) of answering `error_status` instead.
    pub error_rate: f64,
    /// The status of injected errors (the book's is 418).
    pub error_status: StatusCode,
    /// Serve this folder (`{dir}/{cc}/{cc}.gif`, `{dir}/{cc}/metadata.json`) instead of the built-in
    /// images.
    pub dir: Option<PathBuf>,
    /// Also serve this generated test site (every path but `/flags/...`).
    pub site: Option<Site>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            delay: None,
            error_rate: 0.0,
            error_status: StatusCode::IM_A_TEAPOT,
            dir: None,
            site: None,
        }
    }
}

/// The book's server profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// Plain, port 8000.
    Local,
    /// Every response after 0.5 s, port 8001.
    Delay,
    /// 25 % of responses are 418 errors, port 8002.
    Error,
}

impl Profile {
    /// The profile's port, as in the book.
    pub fn port(self) -> u16 {
        match self {
            Profile::Local => 8000,
            Profile::Delay => 8001,
            Profile::Error => 8002,
        }
    }

    /// The profile's behaviour.
    pub fn options(self) -> ServerOptions {
        let mut o = ServerOptions::default();
        match self {
            Profile::Local => {}
            Profile::Delay => {
                o.delay = Some((Duration::from_millis(500), Duration::from_millis(500)))
            }
            Profile::Error => o.error_rate = 0.25,
        }
        o
    }
}

/// The files the server answers with, built once at start.
struct Flags {
    options: ServerOptions,
    files: HashMap<(String, String), (Bytes, &'static str)>,
}

/// Builds the built-in site: a GIF and a metadata.json per country.
fn builtin_files() -> HashMap<(String, String), (Bytes, &'static str)> {
    let mut files = HashMap::new();
    for (cc, name) in COUNTRIES {
        let lc = cc.to_lowercase();
        let meta = serde_json::json!({
            "tld_cc": format!(".{lc}"),
            "iso_cc": cc,
            "country": name,
            "gec_cc": cc,
        });
        files.insert(
            (lc.clone(), format!("{lc}.gif")),
            (Bytes::from(flag_gif(cc)), "image/gif"),
        );
        files.insert(
            (lc, "metadata.json".to_string()),
            (Bytes::from(meta.to_string()), "application/json"),
        );
    }
    files
}

/// A deterministic, distinct GIF for a country: three stripes and a noisy emblem, a few KB.
pub fn flag_gif(cc: &str) -> Vec<u8> {
    const W: u16 = 160;
    const H: u16 = 100;
    let mut seed = cc
        .bytes()
        .fold(2166136261u32, |h, b| (h ^ b as u32).wrapping_mul(16777619));
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    let mut palette = Vec::with_capacity(16 * 3);
    for _ in 0..16 {
        let c = next();
        palette.extend_from_slice(&[c as u8, (c >> 8) as u8, (c >> 16) as u8]);
    }
    let vertical = next() % 2 == 0;
    let stripes = [next() % 16, next() % 16, next() % 16];
    let mut pixels = vec![0u8; W as usize * H as usize];
    for y in 0..H as usize {
        for x in 0..W as usize {
            let along = if vertical {
                x * 3 / W as usize
            } else {
                y * 3 / H as usize
            };
            let (dx, dy) = (x as i32 - 80, y as i32 - 50);
            pixels[y * W as usize + x] = if dx * dx + dy * dy < 30 * 30 {
                (next() % 16) as u8
            } else {
                stripes[along] as u8
            };
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder =
            gif::Encoder::new(&mut out, W, H, &palette).expect("GIF header into memory");
        let frame = gif::Frame {
            width: W,
            height: H,
            buffer: Cow::Owned(pixels),
            ..gif::Frame::default()
        };
        encoder.write_frame(&frame).expect("GIF frame into memory");
    }
    out
}

/// A path segment that names one entry inside a folder: not empty, not `.` or `..`, no
/// separators or NUL. Segments arrive percent-decoded, so `%2e%2e` is caught here too.
fn plain_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

/// Reads `{dir}/{cc}/{file}` if it is a regular file inside `dir` once symlinks are resolved.
fn read_inside(dir: &Path, cc: &str, file: &str) -> Option<Vec<u8>> {
    if !plain_segment(cc) || !plain_segment(file) {
        return None;
    }
    let root = dir.canonicalize().ok()?;
    let path = root.join(cc).join(file).canonicalize().ok()?;
    if !path.starts_with(&root) || !path.is_file() {
        return None;
    }
    fs::read(path).ok()
}

fn content_type(file: &str) -> &'static str {
    if file.ends_with(".gif") {
        "image/gif"
    } else if file.ends_with(".json") {
        "application/json"
    } else {
        "application/octet-stream"
    }
}

/// Applies the delay and maybe an injected error; `Some` is the error response.
async fn misbehave(options: &ServerOptions) -> Option<HttpResponse> {
    if let Some((min, max)) = options.delay {
        let wait = if max > min {
            rand::thread_rng().gen_range(min..=max)
        } else {
            min
        };
        actix_web::rt::time::sleep(wait).await;
    }
    if options.error_rate > 0.0 && rand::thread_rng().gen_bool(options.error_rate.min(1.0)) {
        let status = options.error_status;
        return Some(
            HttpResponse::build(status)
                .body(status.canonical_reason().unwrap_or("error").to_string()),
        );
    }
    None
}

async fn flag(path: web::Path<(String, String)>, site: web::Data<Flags>) -> HttpResponse {
    if let Some(err) = misbehave(&site.options).await {
        return err;
    }
    let (cc, file) = path.into_inner();
    if let Some(dir) = site.options.dir.clone() {
        let found =
            web::block(move || read_inside(&dir, &cc, &file).map(|b| (b, content_type(&file))))
                .await
                .ok()
                .flatten();
        return match found {
            Some((body, ct)) => HttpResponse::Ok().content_type(ct).body(body),
            None => not_found(),
        };
    }
    match site.files.get(&(cc, file)) {
        Some((body, ct)) => HttpResponse::Ok().content_type(*ct).body(body.clone()),
        None => not_found(),
    }
}

async fn other(req: actix_web::HttpRequest, site: web::Data<Flags>) -> HttpResponse {
    if let Some(err) = misbehave(&site.options).await {
        return err;
    }
    match &site.options.site {
        Some(pages) => site_response(pages, req.path(), Some(req.query_string())),
        None => not_found(),
    }
}

/// The test site's answer as an HTTP response.
pub fn site_response(site: &Site, path: &str, query: Option<&str>) -> HttpResponse {
    match site.answer(path, query) {
        Answer::Page(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(html),
        Answer::Robots => HttpResponse::Ok()
            .content_type("text/plain")
            .body(crate::site::ROBOTS_TXT),
        Answer::Redirect(to) => HttpResponse::MovedPermanently()
            .insert_header(("Location", to))
            .finish(),
        Answer::NotFound => not_found(),
    }
}

fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain")
        .body("404 Not Found")
}

/// Starts the server on an already bound listener (port 0 in tests) and returns it running; await
/// it or keep its handle to stop it.
pub fn start(listener: TcpListener, options: ServerOptions, workers: usize) -> io::Result<Server> {
    let files = if options.dir.is_some() {
        HashMap::new()
    } else {
        builtin_files()
    };
    let site = web::Data::new(Flags { options, files });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(site.clone())
            .route("/flags/{cc}/{file}", web::get().to(flag))
            .default_service(web::to(other))
    })
    .workers(workers.max(1))
    .backlog(4096)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// The flag server on a thread of its own, for code without an actix system (examples,
/// embedding tools, tests). Stopped when dropped.
pub struct BackgroundServer {
    base: String,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// The site's base URL, such as `http://127.0.0.1:41234/flags`.
    pub fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        // Stopping is async; a tiny runtime of its own keeps this usable from any thread.
        let _ =
            std::thread::spawn(move || actix_rt::System::new().block_on(handle.stop(false))).join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the built-in flag site with `options` on 127.0.0.1, port 0, on a background thread.
pub fn spawn(options: ServerOptions) -> io::Result<BackgroundServer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}/flags", listener.local_addr()?);
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            match start(listener, options, 1) {
                Ok(server) => {
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
    });
    let handle = rx
        .recv()
        .map_err(|_| io::Error::other("the server thread ended before starting"))??;
    Ok(BackgroundServer {
        base,
        handle,
        thread: Some(thread),
    })
}

/// [`spawn`] with the plain LOCAL behaviour.
pub fn spawn_builtin() -> io::Result<BackgroundServer> {
    spawn(ServerOptions::default())
}

/// Checks a `--dir` folder: it must exist and be a directory.
pub fn check_dir(dir: &Path) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(format!("--dir {}: not a directory", dir.display())),
        Err(e) => Err(format!("--dir {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_gifs_are_distinct_valid_and_a_few_kb() {
        let br = flag_gif("BR");
        let us = flag_gif("US");
        assert_ne!(br, us);
        assert_eq!(br, flag_gif("BR"), "deterministic");
        assert!(br.starts_with(b"GIF89a") || br.starts_with(b"GIF87a"));
        assert!((1000..10_000).contains(&br.len()), "{} bytes", br.len());
        let decoder = gif::DecodeOptions::new().read_info(&br[..]).unwrap();
        assert_eq!((decoder.width(), decoder.height()), (160, 100));
    }

    #[test]
    fn segments_that_could_escape_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "x\0"] {
            assert!(!plain_segment(bad), "{bad:?}");
        }
        assert!(plain_segment("br.gif"));
    }
}
