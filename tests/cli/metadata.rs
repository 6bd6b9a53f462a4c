//! `--metadata`: flags named after their country, and no server can write outside DEST.

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
