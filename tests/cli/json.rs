//! `--json`: JSON Lines whose counts match the text report.

use super::{flags, stdout};

#[test]
fn every_code_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .args(["-e", "--json", "-d"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 678, "start + 676 jobs + summary");
    let start = &lines[0];
    assert_eq!(start["type"], "start");
    assert_eq!(start["jobs"], 676);
    assert_eq!(start["pool_size"], 100);
    assert!(start["server"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let jobs = &lines[1..677];
    assert!(jobs.iter().all(|j| j["type"] == "job"));
    let count = |kind: &str| jobs.iter().filter(|j| j["outcome"] == kind).count() as u64;
    let summary = &lines[677];
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["downloaded"], 194);
    assert_eq!(summary["not_found"], 482);
    assert_eq!(summary["errors"], 0);
    assert_eq!((count("ok"), count("not_found")), (194, 482));
    let br = jobs.iter().find(|j| j["code"] == "BR").unwrap();
    assert_eq!(br["status"], 200);
    assert_eq!(br["file"], "BR.gif");
    assert_eq!(
        br["bytes"],
        std::fs::metadata(dir.path().join("BR.gif")).unwrap().len()
    );
    let zz = jobs.iter().find(|j| j["code"] == "ZZ").unwrap();
    assert_eq!(zz["status"], 404);
    assert!(zz["error"].is_null());

    // The same crawl as text reports the same counts.
    let text = stdout(&flags().args(["-e", "-d"]).arg(dir.path()).output().unwrap());
    assert!(text.contains(&format!(
        "{} flags downloaded.\n{} not found.\n",
        summary["downloaded"], summary["not_found"]
    )));
}

#[test]
fn headers_given_with_dash_h_reach_the_server() {
    use std::sync::{Arc, Mutex};

    use actix_web::{web, HttpRequest, HttpResponse};

    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = Arc::clone(&seen);
    let server = crate::common::TestServer::start(move |cfg| {
        let log = Arc::clone(&log);
        cfg.default_service(web::to(move |req: HttpRequest| {
            let log = Arc::clone(&log);
            async move {
                let get = |h: &str| {
                    req.headers()
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                log.lock()
                    .unwrap()
                    .push((get("authorization"), get("user-agent")));
                HttpResponse::Ok().body("ok")
            }
        }));
    });
    let dir = tempfile::tempdir().unwrap();
    let out = flags()
        .args([
            "BR",
            "-H",
            "Authorization: Bearer t0k3n",
            "-H",
            "User-Agent: my-bot/1",
        ])
        .arg("-s")
        .arg(format!("{}/flags", server.base))
        .arg("-d")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stdout(&out));
    assert_eq!(
        *seen.lock().unwrap(),
        [("Bearer t0k3n".to_string(), "my-bot/1".to_string())]
    );
}
