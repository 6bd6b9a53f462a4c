//! With nothing listening at a label's address, `flags` serves the flags itself.

use super::{closed_port, flags, names, stdout};

#[test]
fn nothing_at_the_label_starts_the_built_in_server() {
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("http://127.0.0.1:{}/flags", closed_port());
    let out = flags()
        .env("FLAGS_LOCAL_URL", &dead)
        .args(["-e", "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.contains(&format!("(built-in server: nothing answered at {dead})")),
        "{first}"
    );
    assert!(
        text.contains("194 flags downloaded.\n482 not found.\n"),
        "{text}"
    );
    assert_eq!(names(dir.path()).len(), 194);
}

#[test]
fn a_server_that_answers_at_the_label_is_used() {
    let server = crate::common::TestServer::start(|cfg| {
        cfg.default_service(actix_web::web::to(|| async {
            actix_web::HttpResponse::Ok().body("ours")
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .env("FLAGS_DELAY_URL", format!("{}/flags", server.base))
        .args(["-s", "DELAY", "BR", "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("DELAY site: {}/flags\n", server.base)),
        "{text}"
    );
    assert_eq!(std::fs::read(dir.path().join("BR.gif")).unwrap(), b"ours");
}
