//! `flags serve --dir` with the book's real data set, when `../shared/data/flags.zip` is there.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use super::{flags, names, stdout};

/// A `flags serve` child process, killed when dropped.
pub struct Serve {
    child: Child,
    pub base: String,
}

impl Serve {
    pub fn start(extra: &[&str]) -> Serve {
        let mut child = flags()
            .args(["serve", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("flags serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .unwrap();
        // "Serving flags at http://127.0.0.1:PORT/flags (Ctrl-C to stop)"
        let base = line.split_whitespace().nth(3).expect("the URL").to_string();
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
