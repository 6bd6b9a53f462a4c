//! `flags serve --dir` with the book's real data set, when `../shared/data/flags.zip` is there.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{flags, names, stdout, Serve};

fn shared_zip() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/flags.zip");
    p.is_file().then_some(p)
}

#[test]
fn serving_the_books_flags_zip_saves_every_image_byte_identical() {
    let Some(zip_path) = shared_zip() else {
        eprintln!("SKIPPED: ../shared/data/flags.zip is not here (it never is in a user's clone)");
        return;
    };
    let unpacked = tempfile::tempdir().unwrap();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    zip.extract(unpacked.path()).unwrap();
    let flags_dir = unpacked.path().join("flags");
    let server = Serve::start(&["--dir", flags_dir.to_str().unwrap()]);

    let dest = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["-e", "-s", &server.base, "-d"])
        .arg(dest.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("194 flags downloaded.\n482 not found.\n"),
        "{text}"
    );
    let files = names(dest.path());
    assert_eq!(files.len(), 194);
    for name in files {
        let cc = name.trim_end_matches(".gif").to_lowercase();
        let mut want = Vec::new();
        zip.by_name(&format!("flags/{cc}/{cc}.gif"))
            .unwrap()
            .read_to_end(&mut want)
            .unwrap();
        assert_eq!(
            std::fs::read(dest.path().join(&name)).unwrap(),
            want,
            "{name}"
        );
    }
}

/// Sends `GET {target}` as raw bytes (no client-side normalisation) and returns the response.
fn raw_get(base: &str, target: &str) -> String {
    use std::io::Write;
    let addr = base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn serve_dir_never_serves_a_file_outside_its_folder() {
    let root = tempfile::tempdir().unwrap();
    let served = root.path().join("flags");
    std::fs::create_dir_all(served.join("br")).unwrap();
    std::fs::write(served.join("br/br.gif"), b"GIF89a-br").unwrap();
    std::fs::write(root.path().join("secret.txt"), b"TOPSECRET").unwrap();
    std::fs::create_dir_all(root.path().join("outside")).unwrap();
    std::fs::write(root.path().join("outside/outside.gif"), b"TOPSECRET").unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), served.join("br/link.gif")).unwrap();
    std::os::unix::fs::symlink(root.path().join("outside"), served.join("outside")).unwrap();
    let server = Serve::start(&["--dir", served.to_str().unwrap()]);
    let base = server.base.trim_end_matches("/flags").to_string();

    let ok = raw_get(&base, "/flags/br/br.gif");
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.ends_with("GIF89a-br"),
        "{ok}"
    );
    let secret = root.path().join("secret.txt");
    let abs = secret.to_str().unwrap();
    let attempts = [
        "/flags/../secret.txt".to_string(),
        "/flags/br/../../secret.txt".to_string(),
        "/flags/%2e%2e/secret.txt".to_string(),
        "/flags/%2E%2E/%2e%2e/secret.txt".to_string(),
        "/flags/br/..%2f..%2fsecret.txt".to_string(),
        "/flags/br/%2e%2e%2f%2e%2e%2fsecret.txt".to_string(),
        "/flags/..%5c..%5csecret.txt/x".to_string(),
        format!("/flags/{}", abs.trim_start_matches('/')),
        format!(
            "/flags/%2F{}",
            abs.trim_start_matches('/').replace('/', "%2F")
        ),
        format!("/flags//{}", abs.trim_start_matches('/')),
        "/flags/br/link.gif".to_string(),
        "/flags/outside/outside.gif".to_string(),
        "/flags/br/%00.gif".to_string(),
        "/flags/./br/../../secret.txt".to_string(),
    ];
    for target in &attempts {
        let resp = raw_get(&base, target);
        let status = resp.split_whitespace().nth(1).unwrap_or("");
        assert!(status == "404" || status == "400", "{target}: {resp}");
        assert!(!resp.contains("TOPSECRET"), "{target} leaked: {resp}");
    }
}
