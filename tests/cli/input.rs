//! `-i/--input`: a URL list, read lazily; one outcome per line; safe, deterministic names.

use std::io::Write;
use std::process::Stdio;

use super::{flags, stdout, Serve};

fn list(base: &str) -> String {
    let root = base.trim_end_matches("/flags");
    format!(
        "# a comment\n\n{base}/br/br.gif\n  {base}/fr/fr.gif  \n{base}/zz/zz.gif\n\
         ftp://127.0.0.1/x\nnot a url\n{base}/br/metadata.json\n{root}/flags/br/br.gif?v=2\n\
         {root}/%2e%2e/%2e%2e/escape\n"
    )
}

fn all_files(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_url_list_gives_one_outcome_per_line() {
    let server = Serve::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let urls = root.path().join("urls.txt");
    std::fs::write(&urls, list(&server.base)).unwrap();
    let dest = root.path().join("dest");
    let out = flags()
        .arg("-i")
        .arg(&urls)
        .arg("-d")
        .arg(&dest)
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with(&format!("URL list: {}\n", urls.display())),
        "{text}"
    );
    assert!(
        text.contains("  4 files downloaded.\n  2 not found.\n  2 errors.\n"),
        "{text}"
    );

    let files = all_files(&dest);
    assert_eq!(files.len(), 4, "{files:?}");
    let host = server
        .base
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .replace(':', "_");
    let br = dest.join(&host).join("flags/br/br.gif");
    assert_eq!(std::fs::read(&br).unwrap(), flags::server::flag_gif("BR"));
    assert!(dest.join(&host).join("flags/fr/fr.gif").is_file());
    assert!(dest.join(&host).join("flags/br/metadata.json").is_file());
    // The same path with a query gets a name of its own.
    assert!(
        files
            .iter()
            .any(|f| f.starts_with(&format!("{host}/flags/br/br-")) && f.ends_with(".gif")),
        "{files:?}"
    );
    // Nothing outside DEST.
    let mut top: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, ["dest", "urls.txt"]);
}

#[test]
fn a_url_list_on_stdin_with_json() {
    let server = Serve::start(&[]);
    let dest = tempfile::tempdir().unwrap();
    let mut child = flags()
        .args(["-i", "-", "--json", "-d"])
        .arg(dest.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list(&server.base).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10, "start, 8 jobs, summary");
    assert_eq!(lines[0]["server"], "standard input");
    let summary = &lines[9];
    assert_eq!(
        (
            summary["jobs"].as_u64(),
            summary["downloaded"].as_u64(),
            summary["errors"].as_u64()
        ),
        (Some(8), Some(4), Some(2))
    );
    let ftp = lines
        .iter()
        .find(|l| l["url"] == "ftp://127.0.0.1/x")
        .unwrap();
    assert_eq!(ftp["error"], "not an http(s) URL: ftp");
}

#[test]
fn two_jobs_never_write_the_same_name_silently() {
    // The same URL twice: one download, one error that says why; never an overwrite.
    let server = Serve::start(&[]);
    let root = tempfile::tempdir().unwrap();
    let urls = root.path().join("urls.txt");
    let br = format!("{}/br/br.gif", server.base);
    std::fs::write(&urls, format!("{br}\n{br}\n")).unwrap();
    let out = flags()
        .args(["-m", "1", "-v", "-i"])
        .arg(&urls)
        .arg("-d")
        .arg(root.path().join("dest"))
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("{br} OK")), "{text}");
    assert!(
        text.contains("was already saved by another job of this run; not overwritten"),
        "{text}"
    );
    assert!(
        text.contains("  1 file downloaded.") || text.contains("  1 files downloaded."),
        "{text}"
    );
    assert!(text.contains("  1 error."), "{text}");
}

#[test]
fn a_slow_pipe_never_stalls_a_download_in_flight() {
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    use actix_web::{web, HttpResponse};

    // /slow answers after 600 ms; every other path at once.
    let server = crate::common::TestServer::start(|cfg| {
        cfg.route(
            "/slow",
            web::get().to(|| async {
                actix_web::rt::time::sleep(Duration::from_millis(600)).await;
                HttpResponse::Ok().body("slow body")
            }),
        )
        .default_service(web::to(|| async { HttpResponse::Ok().body("fast body") }));
    });
    let dest = tempfile::tempdir().unwrap();
    let mut child = flags()
        .args(["-i", "-", "--json", "-m", "4", "-d"])
        .arg(dest.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    writeln!(stdin, "{}/slow", server.base).unwrap();
    stdin.flush().unwrap();
    // The pipe stays silent now: the slow download must still finish and be reported, although
    // the next line of the list has not come yet.
    let slow_done = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains(r#""type":"job""#) => break Some(line),
            Ok(_) => continue,
            Err(_) => break None,
        }
    };
    let slow_done =
        slow_done.expect("the slow download was not reported while the pipe was silent");
    assert!(slow_done.contains(r#""outcome":"ok""#), "{slow_done}");
    // Then a line every 300 ms, as `tail -f` would deliver them.
    for i in 0..4 {
        writeln!(stdin, "{}/fast/{i}", server.base).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    let rest: Vec<String> = rx.iter().collect();
    let summary = rest.last().unwrap();
    assert!(
        summary.contains(r#""jobs":5"#) && summary.contains(r#""downloaded":5"#),
        "{summary}"
    );
}
