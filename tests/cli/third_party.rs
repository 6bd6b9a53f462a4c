//! The web servers Debian packages, each serving the flag site on 127.0.0.1: nginx, Apache httpd
//! (event MPM, Debian's keep-alive settings), lighttpd and busybox httpd. `.ci/run` installs them;
//! a test whose server is missing says SKIPPED and why.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::faults::crawl;
use super::real_servers::{assert_all_flags_identical, flag_site};

/// A server process, stopped when dropped: SIGTERM, so nginx and Apache take their workers
/// down with them (a SIGKILL would leave them serving), then SIGKILL if it lingers.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        super::send_signal(&self.0, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(cmd: &mut Command, port: u16) -> Running {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{cmd:?} does not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Running(child)
}

/// `-e` at `-m 50`, no retries: 194 / 482 / 0 and every file identical.
fn every_code_from(server: &str, port: u16) {
    let (text, code, dir) = crawl(
        &format!("http://127.0.0.1:{port}"),
        &["-e", "-m", "50", "--retries", "0"],
    );
    assert_eq!(code, Some(0), "{server}: {text}");
    assert!(
        text.contains("194 flags downloaded.\n482 not found.\nElapsed"),
        "{server}: {text}"
    );
    assert_all_flags_identical(dir.path(), server);
}

fn installed(program: &str) -> bool {
    let found = Path::new(program).is_file()
        || Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIPPED: {program} is not installed (.ci/run installs it with apt-get)");
    }
    found
}

#[test]
fn nginx() {
    if !installed("nginx") {
        return;
    }
    let (site, root) = (flag_site(), tempfile::tempdir().unwrap());
    let port = super::closed_port();
    let conf = root.path().join("nginx.conf");
    let (r, w) = (root.path().display(), site.path().display());
    std::fs::write(
        &conf,
        format!(
            "worker_processes 2; daemon off; pid {r}/nginx.pid; error_log {r}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{ access_log off; server {{ listen 127.0.0.1:{port}; root {w}; }} }}\n"
        ),
    )
    .unwrap();
    let _server = start(Command::new("nginx").arg("-c").arg(&conf), port);
    every_code_from("nginx", port);
}

#[test]
fn apache_httpd_event_mpm() {
    if !installed("/usr/sbin/apache2") {
        return;
    }
    let (site, root) = (flag_site(), tempfile::tempdir().unwrap());
    let port = super::closed_port();
    let conf = root.path().join("apache.conf");
    let (r, w, m) = (
        root.path().display(),
        site.path().display(),
        "/usr/lib/apache2/modules",
    );
    // Debian's keep-alive settings, and few threads, so connections are closed under load.
    std::fs::write(
        &conf,
        format!(
            "ServerRoot {r}\nLoadModule mpm_event_module {m}/mod_mpm_event.so\n\
             LoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule mime_module {m}/mod_mime.so\nTypesConfig /etc/mime.types\n\
             Listen 127.0.0.1:{port}\nServerName localhost\nUser www-data\nGroup www-data\n\
             PidFile {r}/apache.pid\nErrorLog {r}/error.log\nDocumentRoot {w}\n\
             <Directory {w}>\n  Require all granted\n</Directory>\n\
             KeepAlive On\nMaxKeepAliveRequests 100\nKeepAliveTimeout 5\n\
             StartServers 1\nServerLimit 2\nThreadsPerChild 10\nMaxRequestWorkers 20\n\
             MinSpareThreads 5\nMaxSpareThreads 20\n"
        ),
    )
    .unwrap();
    let _server = start(
        Command::new("/usr/sbin/apache2")
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND"),
        port,
    );
    every_code_from("apache", port);
}

#[test]
fn lighttpd() {
    if !installed("lighttpd") {
        return;
    }
    let (site, root) = (flag_site(), tempfile::tempdir().unwrap());
    let port = super::closed_port();
    let conf = root.path().join("lighttpd.conf");
    let w = site.path().display();
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{w}\"\nserver.bind = \"127.0.0.1\"\n\
             server.port = {port}\nserver.username = \"www-data\"\n\
             server.groupname = \"www-data\"\n"
        ),
    )
    .unwrap();
    let _server = start(
        Command::new("lighttpd").arg("-D").arg("-f").arg(&conf),
        port,
    );
    every_code_from("lighttpd", port);
}

#[test]
fn busybox_httpd() {
    if !installed("busybox") {
        return;
    }
    let site = flag_site();
    let port = super::closed_port();
    let _server = start(
        Command::new("busybox")
            .args(["httpd", "-f", "-p", &format!("127.0.0.1:{port}"), "-h"])
            .arg(site.path()),
        port,
    );
    every_code_from("busybox httpd", port);
}
