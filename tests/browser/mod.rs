//! A real browser for the console tests: Debian's headless Chromium driven over WebDriver
//! (chromedriver + fantoccini), one browser per officer, presenting that officer's client
//! certificate (see nss.rs for how, without a dialog).
//!
//! The API is blocking, like the rest of the test support: each call runs on the browser's own
//! tokio runtime. Every wait is bounded by [`WAIT`]; when a wait runs out, a call fails, or the
//! test panics while a browser is open, the browser's screenshot and page source are saved to
//! `<output>/screenshots/failures/` and the failure names them.
#![allow(dead_code)] // each test binary uses its own part

mod nss;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value as Json, json};

use crate::common::free_port;
use crate::console_support::Console;

/// The longest any one wait (page load, element, condition) may take.
pub const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
const WIDTH: u32 = 1280;

/// Where CI collects what tests leave: `$EUGATE_CI_OUTPUT`, else `target/ci-output`.
pub fn output_dir() -> PathBuf {
    std::env::var_os("EUGATE_CI_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ci-output"))
}

pub fn screenshots_dir() -> PathBuf {
    output_dir().join("screenshots")
}

fn chromium() -> String {
    std::env::var("EUGATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

fn chromedriver() -> String {
    std::env::var("EUGATE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    /// HOME of chromedriver and Chromium: NSS database, profile, chromedriver's log.
    home: tempfile::TempDir,
    base: String,
    /// Names this browser's files: `<label>-<page>.png`.
    label: String,
    /// The failure artifacts are saved (once is enough).
    saved: std::cell::Cell<bool>,
}

impl Browser {
    /// A browser presenting `officer`'s certificate (`None`: no certificate at all) to `console`.
    pub fn open(console: &Console, officer: Option<&str>, label: &str) -> Browser {
        nss::ensure_policy();
        let home = tempfile::tempdir().expect("browser home");
        let cert = officer.map(|o| {
            let (c, k) = console.cert(o);
            (o, c, k)
        });
        nss::make_home(
            home.path(),
            &console.certs.path().join("ca.pem"),
            cert.as_ref()
                .map(|(o, c, k)| (*o, c.as_path(), k.as_path())),
        );
        let (driver, port) = start_driver(home.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut b = Browser {
            rt,
            client: None,
            driver,
            home,
            base: console.url(""),
            label: label.to_string(),
            saved: std::cell::Cell::new(false),
        };
        b.connect(port);
        b
    }

    fn connect(&mut self, port: u16) {
        let profile = self.home.path().join("profile");
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    // Root on a small CI box: no sandbox, no GPU, /tmp instead of a small /dev/shm.
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={WIDTH},900"),
                    "--no-first-run", "--no-default-browser-check", "--password-store=basic",
                    "--disable-background-networking", "--disable-component-update",
                ],
            },
        });
        let Json::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = self
            .rt
            .block_on(async {
                tokio::time::timeout(
                    WAIT,
                    ClientBuilder::new(connector)
                        .capabilities(caps)
                        .connect(&url),
                )
                .await
            })
            .map_err(|_| format!("no WebDriver session within {WAIT:?}"))
            .and_then(|r| r.map_err(|e| format!("WebDriver session: {e}")))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.driver_log()));
        let timeouts = TimeoutConfiguration::new(Some(WAIT), Some(WAIT), Some(Duration::ZERO));
        self.rt
            .block_on(client.update_timeouts(timeouts))
            .expect("set WebDriver timeouts");
        self.client = Some(client);
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("an open WebDriver session")
    }

    /// Runs a WebDriver call; an error fails the test with what the browser shows.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> T {
        match self.rt.block_on(f) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{what}: {e}")),
        }
    }

    /// Saves the screenshot and page source, then fails the test with `message`.
    pub fn fail(&self, message: &str) -> ! {
        let saved = self.save_failure();
        panic!(
            "browser {}: {message}\n  at {}\n  saved: {saved}\n--- chromedriver log (tail) ---\n{}",
            self.label,
            self.current_url_or_unknown(),
            self.driver_log()
        );
    }

    fn current_url_or_unknown(&self) -> String {
        self.client
            .as_ref()
            .and_then(|c| self.rt.block_on(c.current_url()).ok())
            .map(|u| u.to_string())
            .unwrap_or_else(|| "(unknown page)".into())
    }

    fn save_failure(&self) -> String {
        let Some(c) = self.client.as_ref() else {
            return "nothing (no session)".into();
        };
        self.saved.set(true);
        let dir = screenshots_dir().join("failures");
        if std::fs::create_dir_all(&dir).is_err() {
            return format!("nothing ({} not writable)", dir.display());
        }
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        let base = dir.join(format!("{}-{stamp}", self.label));
        let png = base.with_extension("png");
        let html = base.with_extension("html");
        if let Ok(Ok(shot)) = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.screenshot()).await })
        {
            let _ = std::fs::write(&png, shot);
        }
        if let Ok(Ok(src)) = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.source()).await })
        {
            let _ = std::fs::write(&html, src);
        }
        format!("{} and {}", png.display(), html.display())
    }

    fn driver_log(&self) -> String {
        let log =
            std::fs::read_to_string(self.home.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Opens `path` of the console and waits for the page to load.
    pub fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.run(&format!("open {url}"), self.client().goto(&url));
    }

    /// The path (and query) of the page shown.
    pub fn path(&self) -> String {
        let url = self.run("current URL", self.client().current_url());
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The HTTP status of the document shown, as the browser received it.
    pub fn status(&self) -> u16 {
        let v = self.script(
            "const n = performance.getEntriesByType('navigation')[0]; \
             return n ? n.responseStatus : 0;",
        );
        v.as_u64().unwrap_or(0) as u16
    }

    /// Runs `body` (a function body) in the page and returns its value.
    pub fn script(&self, body: &str) -> Json {
        self.run("run a script", self.client().execute(body, vec![]))
    }

    /// Polls `ok` until it holds; fails after [`WAIT`] naming `what`.
    pub fn wait_until(&self, what: &str, mut ok: impl FnMut(&Browser) -> bool) {
        let start = Instant::now();
        while !ok(self) {
            if start.elapsed() > WAIT {
                self.fail(&format!("waited {WAIT:?} for {what}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until an element matches `css`.
    pub fn wait_for(&self, css: &str) {
        self.wait_until(&format!("an element `{css}`"), |b| b.count(css) > 0);
    }

    /// How many elements match `css` now (no wait: for absence on a loaded page).
    pub fn count(&self, css: &str) -> usize {
        self.run(
            &format!("find `{css}`"),
            self.client().find_all(Locator::Css(css)),
        )
        .len()
    }

    /// The text of the first element matching `css` (waits for it).
    pub fn text(&self, css: &str) -> String {
        self.wait_for(css);
        let e = self.run(
            &format!("find `{css}`"),
            self.client().find(Locator::Css(css)),
        );
        self.run(&format!("text of `{css}`"), e.text())
    }

    /// The texts of every element matching `css` now.
    pub fn texts(&self, css: &str) -> Vec<String> {
        let all = self.run(
            &format!("find `{css}`"),
            self.client().find_all(Locator::Css(css)),
        );
        all.iter()
            .map(|e| self.run(&format!("text of `{css}`"), e.text()))
            .collect()
    }

    /// Attribute `name` of the first element matching `css` (waits for it).
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.wait_for(css);
        let e = self.run(
            &format!("find `{css}`"),
            self.client().find(Locator::Css(css)),
        );
        self.run(&format!("attribute {name} of `{css}`"), e.attr(name))
    }

    /// Replaces the value of the field matching `css` by typing `text`.
    pub fn fill(&self, css: &str, text: &str) {
        self.wait_for(css);
        let e = self.run(
            &format!("find `{css}`"),
            self.client().find(Locator::Css(css)),
        );
        self.run(&format!("clear `{css}`"), e.clear());
        self.run(&format!("type into `{css}`"), e.send_keys(text));
    }

    /// Chooses `file` in the file input matching `css`, as a user picking it in the dialog
    /// (WebDriver takes the path as typed keys; a file input must not be cleared first).
    pub fn choose_file(&self, css: &str, file: &Path) {
        self.wait_for(css);
        let e = self.run(
            &format!("find `{css}`"),
            self.client().find(Locator::Css(css)),
        );
        let path = file.to_str().expect("a UTF-8 path");
        self.run(&format!("choose a file in `{css}`"), e.send_keys(path));
    }

    /// Clicks the element matching `css` and, as it submits a form or follows a link, waits
    /// until the next document has loaded.
    pub fn click_and_load(&self, css: &str) {
        self.wait_for(css);
        let e = self.run(
            &format!("find `{css}`"),
            self.client().find(Locator::Css(css)),
        );
        self.mark_document();
        self.run(&format!("click `{css}`"), e.click());
        self.wait_for_new_document(&format!("the page after clicking `{css}`"));
    }

    /// Submits a form the page did not offer (as a hand-made request would): POST `fields` and
    /// the officer's CSRF token (from the page's meta tag) to `path`, then waits for the answer.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) {
        let fields: serde_json::Map<String, Json> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Json::String(v.to_string())))
            .collect();
        self.mark_document();
        self.run(
            &format!("POST {path}"),
            self.client().execute(
                "const [path, fields] = arguments; \
                 const f = document.createElement('form'); \
                 f.method = 'post'; f.action = path; \
                 const meta = document.querySelector('meta[name=\"csrf-token\"]'); \
                 if (meta) fields.csrf = meta.content; \
                 for (const [k, v] of Object.entries(fields)) { \
                   const i = document.createElement('input'); \
                   i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } \
                 document.body.appendChild(f); f.submit();",
                vec![Json::String(path.to_string()), Json::Object(fields)],
            ),
        );
        self.wait_for_new_document(&format!("the answer to POST {path}"));
    }

    /// Tags the current document, so that a new one can be told from it.
    fn mark_document(&self) {
        self.script("window.__eugateOld = true; return null;");
    }

    fn wait_for_new_document(&self, what: &str) {
        self.wait_until(what, |b| {
            // While the old document is still there, or the new one is loading, this is false;
            // a WebDriver error in between (navigation in progress) counts as not yet.
            let probe = b.client().execute(
                "return window.__eugateOld !== true && document.readyState === 'complete';",
                vec![],
            );
            matches!(b.rt.block_on(probe), Ok(Json::Bool(true)))
        });
    }

    /// Saves the whole page (the window is resized to its height) as `<label>-<name>.png` in
    /// the screenshots folder; returns the file.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let height = self
            .script("return Math.ceil(document.documentElement.scrollHeight);")
            .as_u64()
            .unwrap_or(900)
            .clamp(600, 8000) as u32;
        self.run(
            "resize the window",
            self.client().set_window_size(WIDTH, height),
        );
        let png = self.run("take a screenshot", self.client().screenshot());
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let file = dir.join(format!("{}-{name}.png", self.label));
        std::fs::write(&file, png).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        file
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && self.client.is_some() && !self.saved.get() {
            let saved = self.save_failure();
            eprintln!("browser {}: test failed; saved {saved}", self.label);
        }
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.close()).await });
        }
        // chromedriver runs in its own process group with the browser it started: end both.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// chromedriver on a free loopback port, with `home` as HOME; waits until it listens.
fn start_driver(home: &Path) -> (Child, u16) {
    let port = free_port();
    let log = home.join("chromedriver.log");
    let mut driver = Command::new(chromedriver())
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (Debian's chromium-driver; scripts/test installs it)",
                chromedriver()
            )
        });
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = driver.try_wait() {
            panic!(
                "chromedriver exited ({status}) before listening on {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        if start.elapsed() > WAIT {
            let _ = driver.kill();
            panic!("chromedriver did not listen on {port} within {WAIT:?}");
        }
        std::thread::sleep(POLL);
    }
    (driver, port)
}
