//! https against a local server with a self-signed certificate that the test trusts explicitly.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use super::{flags, names, stdout};

/// An https flag server on 127.0.0.1 port 0 with a fresh self-signed certificate for `localhost`;
/// returns its base URL and the certificate (PEM).
fn https_server() -> (String, String) {
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
            HttpServer::new(|| {
                App::new().route(
                    "/flags/{cc}/{file}",
                    web::get().to(|path: web::Path<(String, String)>| async move {
                        let (cc, _) = path.into_inner();
                        match flags::countries::name_of(&cc.to_uppercase()) {
                            Some(_) => {
                                HttpResponse::Ok().body(flags::server::flag_gif(&cc.to_uppercase()))
                            }
                            None => HttpResponse::NotFound().finish(),
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
    let (base, pem) = https_server();
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
