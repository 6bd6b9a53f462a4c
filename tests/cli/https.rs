//! https against a local server with a self-signed certificate that the test trusts explicitly.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use super::{flags, names, stdout};

/// An https flag server on 127.0.0.1 port 0 with a fresh self-signed certificate for `localhost`;
/// returns its base URL and the certificate (PEM). With `redirect_fr`, France's flag is a
/// redirect to that URL.
fn https_server(redirect_fr: Option<String>) -> (String, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.key_pair.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.cert.der().clone()], key)
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                let redirect_fr = redirect_fr.clone();
                App::new().route(
                    "/flags/{cc}/{file}",
                    web::get().to(move |path: web::Path<(String, String)>| {
                        let redirect_fr = redirect_fr.clone();
                        async move {
                            let (cc, _) = path.into_inner();
                            if let (Some(to), "fr") = (redirect_fr, cc.as_str()) {
                                return HttpResponse::Found()
                                    .insert_header(("Location", to))
                                    .finish();
                            }
                            match flags::countries::name_of(&cc.to_uppercase()) {
                                Some(_) => HttpResponse::Ok()
                                    .body(flags::server::flag_gif(&cc.to_uppercase())),
                                None => HttpResponse::NotFound().finish(),
                            }
                        }
                    }),
                )
            })
            .workers(1)
            .listen_rustls_0_23(listener, config)
            .unwrap()
            .run()
            .await
        })
    });
    (format!("https://localhost:{port}/flags"), cert_pem)
}

#[test]
fn https_with_a_trusted_self_signed_certificate() {
    let (base, pem) = https_server(None);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    let dest = dir.path().join("dest");

    let out = flags()
        .args(["BR", "ZZ", "-v", "-s", &base, "--cacert"])
        .arg(&ca)
        .arg("-d")
        .arg(&dest)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("BR OK") && text.contains("ZZ not found"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(dest.join("BR.gif")).unwrap(),
        flags::server::flag_gif("BR")
    );

    // Without trusting it, the certificate is refused: an error, no file.
    let dest2 = dir.path().join("dest2");
    let out = flags()
        .args(["BR", "-v", "-s", &base, "-d"])
        .arg(&dest2)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("BR error: ") && text.to_lowercase().contains("certificate"),
        "{text}"
    );
    assert!(names(&dest2).is_empty());
}

/// Writes the certificate where `--cacert` can read it.
fn trust(dir: &std::path::Path, pem: &str) -> std::path::PathBuf {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, pem).unwrap();
    ca
}

#[test]
fn a_certificate_error_is_not_retried() {
    let (base, _) = https_server(None);
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["BR", "--json", "--retries", "3", "-s", &base, "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let job = text
        .lines()
        .find(|l| l.contains(r#""type":"job""#))
        .unwrap();
    let job: serde_json::Value = serde_json::from_str(job).unwrap();
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(job["error_kind"], "tls", "{job}");
    assert!(
        job["error"].as_str().unwrap().contains("certificate"),
        "{job}"
    );
}

#[test]
fn https_to_http_redirects_need_the_users_consent() {
    let plain = crate::common::raw::ConnServer::start(crate::common::raw::Style::KeepAlive, |p| {
        p.ends_with("/fr.gif")
            .then(|| b"FR over plain http".to_vec())
    });
    let (base, pem) = https_server(Some(format!("{}/flags/fr/fr.gif", plain.base)));
    let dir = tempfile::tempdir().unwrap();
    let ca = trust(dir.path(), &pem);
    let run = |extra: &[&str], dest: &str| {
        let out = flags()
            .args(["BR", "FR", "-v", "-s", &base, "--cacert"])
            .arg(&ca)
            .args(extra)
            .arg("-d")
            .arg(dir.path().join(dest))
            .output()
            .unwrap();
        (stdout(&out), out.status.code())
    };

    let (text, code) = run(&[], "refused");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("BR OK"), "{text}");
    assert!(
        text.contains("FR error: redirect from https to plain http refused: http://127.0.0.1:"),
        "{text}"
    );
    assert_eq!(names(&dir.path().join("refused")), vec!["BR.gif"]);
    assert_eq!(plain.stats.get().1, 0, "the http server was never asked");

    let (text, code) = run(&["--allow-insecure-redirects"], "allowed");
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        std::fs::read(dir.path().join("allowed/FR.gif")).unwrap(),
        b"FR over plain http"
    );
}
