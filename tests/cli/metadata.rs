//! `--metadata`: flags named after their country, and no server can write outside DEST.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, HttpResponse};

use super::{flags, names, stdout};
use crate::common::TestServer;

#[test]
fn metadata_names_files_after_countries() {
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["--metadata", "BR", "US", "CI", "ZZ", "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        names(dir.path()),
        vec!["Brazil.gif", "Côte_d'Ivoire.gif", "United_States.gif"]
    );
}

#[test]
fn hostile_metadata_cannot_escape_dest() {
    let hostile = [
        ("aa", "../../escaped"),
        ("ab", "/etc/passwd"),
        ("ac", "..\\..\\win"),
        ("ad", "line\nbreak\u{7}bell"),
        ("ae", ".."),
        ("af", "."),
        ("ag", "/"),
        ("ah", "dir/inside"),
    ];
    let server = TestServer::start(move |cfg| {
        cfg.route(
            "/flags/{cc}/{file}",
            web::get().to(move |path: web::Path<(String, String)>| async move {
                let (cc, file) = path.into_inner();
                let Some((_, country)) = hostile.iter().find(|(c, _)| *c == cc) else {
                    return HttpResponse::NotFound().finish();
                };
                if file == "metadata.json" {
                    HttpResponse::Ok().json(serde_json::json!({ "country": country }))
                } else {
                    HttpResponse::Ok().body(format!("flag of {cc}"))
                }
            }),
        );
    });
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("a/b/dest");
    let out = flags()
        .args(["--metadata", "-v", "A", "-s"])
        .arg(format!("{}/flags", server.base))
        .arg("-d")
        .arg(&dest)
        .output()
        .unwrap();
    let text = stdout(&out);
    // Names that are nothing once made safe are errors; the rest land inside DEST.
    assert!(text.contains("AE error: unusable country name"), "{text}");
    assert!(text.contains("AF error: unusable country name"), "{text}");
    assert!(text.contains("AG error: unusable country name"), "{text}");
    assert_eq!(
        names(&dest),
        vec![
            "escaped.gif",
            "etcpasswd.gif",
            "linebreakbell.gif",
            "win.gif",
            "dirinside.gif"
        ]
        .into_iter()
        .map(String::from)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );
    // Nothing anywhere else under the temp root.
    assert_eq!(names(root.path()), vec!["a"]);
    assert_eq!(names(&root.path().join("a")), vec!["b"]);
    assert_eq!(names(&root.path().join("a/b")), vec!["dest"]);
    assert_eq!(out.status.code(), Some(1));
}

/// A flag site whose `metadata.json` answers 503 to the first request for each country, and
/// that counts image requests per code.
fn flaky_metadata_site() -> (TestServer, Arc<Mutex<HashMap<String, u32>>>) {
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counts = Arc::clone(&seen);
    let server = TestServer::start(move |cfg| {
        let seen = Arc::clone(&seen);
        cfg.route(
            "/flags/{cc}/{file}",
            web::get().to(move |path: web::Path<(String, String)>| {
                let seen = Arc::clone(&seen);
                async move {
                    let (cc, file) = path.into_inner();
                    let up = cc.to_uppercase();
                    let Some(country) = flags::countries::name_of(&up) else {
                        return HttpResponse::NotFound().finish();
                    };
                    let n = {
                        let mut seen = seen.lock().unwrap();
                        let n = seen.entry(format!("{cc}/{file}")).or_insert(0);
                        *n += 1;
                        *n
                    };
                    match file.as_str() {
                        "metadata.json" if n == 1 => HttpResponse::ServiceUnavailable().finish(),
                        "metadata.json" if cc == "zw" => {
                            // A "one-line JSON" of 1 MiB: over the metadata limit.
                            let pad = " ".repeat(1 << 20);
                            HttpResponse::Ok().body(format!("{{\"country\":\"{country}\"{pad}}}"))
                        }
                        "metadata.json" => {
                            HttpResponse::Ok().json(serde_json::json!({ "country": country }))
                        }
                        _ => HttpResponse::Ok().body(flags::server::flag_gif(&up)),
                    }
                }
            }),
        );
    });
    (server, counts)
}

fn crawl_metadata(base: &str, dest: &std::path::Path, extra: &[&str]) -> (String, Option<i32>) {
    let out = flags()
        .args(["--metadata", "-a", "-v", "-s"])
        .arg(format!("{base}/flags"))
        .args(extra)
        .arg("-d")
        .arg(dest)
        .output()
        .unwrap();
    (stdout(&out), out.status.code())
}

#[test]
fn metadata_gets_retries_a_size_limit_and_costs_no_image_when_it_fails() {
    let (server, seen) = flaky_metadata_site();
    let dest = tempfile::tempdir().unwrap();
    let (text, code) = crawl_metadata(&server.base, dest.path(), &["--retries", "2"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("193 flags downloaded.\n  1 error.\n"),
        "{text}"
    );
    assert!(
        text.contains("ZW error: metadata: body of ") && text.contains("limit of 65536 bytes"),
        "{text}"
    );
    assert!(dest.path().join("Brazil.gif").is_file());
    assert!(!dest.path().join("Zimbabwe.gif").exists());
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.get("br/metadata.json"),
        Some(&2),
        "one retry after the 503"
    );
    // The name comes first: no image is downloaded only to be thrown away.
    assert_eq!(seen.get("zw/zw.gif"), None);
}

#[test]
fn metadata_with_skip_existing_skips_by_country_name() {
    let (server, seen) = flaky_metadata_site();
    let dest = tempfile::tempdir().unwrap();
    let (text, _) = crawl_metadata(&server.base, dest.path(), &["--retries", "2"]);
    assert!(text.contains("193 flags downloaded."), "{text}");
    let images_before: u32 = image_requests(&seen);
    assert_eq!(images_before, 193);

    let (text, code) = crawl_metadata(&server.base, dest.path(), &["--skip-existing"]);
    assert!(text.contains("193 skipped (already downloaded)."), "{text}");
    assert_eq!(
        code,
        Some(1),
        "Zimbabwe's metadata is still too large: {text}"
    );
    assert_eq!(
        image_requests(&seen),
        images_before,
        "no image fetched again"
    );
}

fn image_requests(seen: &Mutex<HashMap<String, u32>>) -> u32 {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.ends_with(".gif"))
        .map(|(_, n)| n)
        .sum()
}
