//! The console's audit search and transfer register on a real gateway: OpenSSH sftp uploads
//! (one under a name that is HTML), a denied upload and a refused login under a hostile user
//! name; the pages show them as text, the filters narrow them, the exports list exactly them
//! (and are audit records), the register download equals `eugate audit register`, and a
//! broken chain shows as BROKEN.

mod common;
mod console_support;

use std::process::Command;

use common::{Options, audit_events, bin};
use console_support::Console;

/// A path whose last part is `<script>alert(1)</script>.txt` (a `/` cannot be in one name).
const HOSTILE_DIR: &str = "<script>alert(1)<";
const HOSTILE_FILE: &str = "<script>alert(1)</script>.txt";
const HOSTILE_USER: &str = "<img src=x onerror=alert(2)>";
const ALL_TIME: &str = "from=2000-01-01&to=2100-01-01";

/// The text of the element with `id`, up to its closing `</tag>`.
fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let open = format!("<{tag} id=\"{id}\"");
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no {open} in {html}"));
    let end = html[start..].find(&format!("</{tag}>")).unwrap() + start;
    &html[start..end]
}

/// The objects of the rows of `table#records`.
fn objects(html: &str) -> Vec<String> {
    element(html, "table", "records")
        .split("<td class=\"object\">")
        .skip(1)
        .map(|s| s[..s.find("</td>").unwrap()].to_string())
        .collect()
}

/// A refused SSH login under `user` (paramiko: OpenSSH's client refuses such names).
fn hostile_login(c: &Console, user: &str) {
    let script = r#"
import sys, paramiko
t = paramiko.Transport(("127.0.0.1", int(sys.argv[1])))
t.start_client(timeout=20)
try:
    t.auth_password(sys.argv[2], "wrong")
except paramiko.AuthenticationException:
    pass
t.close()
"#;
    let out = Command::new("python3")
        .args(["-c", script, &c.g.port.to_string(), user])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn cli_register(files: &[&std::path::Path], tenant: &str) -> Vec<u8> {
    let out = Command::new(bin())
        .args(["audit", "register", "--tenant", tenant])
        .args([
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--format",
            "csv",
        ])
        .args(files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    out.stdout
}

#[test]
fn audit_and_register_pages_show_exactly_the_gateways_records_escaped() {
    let other_dir = tempfile::tempdir().unwrap();
    let other = other_dir.path().join("other-instance.jsonl");
    // An empty log verifies (no records); it is broken later.
    std::fs::write(&other, "").unwrap();
    let c = Console::start_with(
        Options::default(),
        &format!("audit_logs = [\"{}\"]", other.display()),
    );
    std::fs::write(c.g.path("up.bin"), b"hello register").unwrap();
    c.g.sftp_ok(
        "alice",
        &format!("mkdir '{HOSTILE_DIR}'\nput up.bin '{HOSTILE_FILE}'\nput up.bin plain.bin\n"),
    );
    std::fs::write(c.g.path("denied.bin"), b"nope").unwrap();
    assert!(!c.g.sftp("dave", "put denied.bin\n").status.success());
    hostile_login(&c, HOSTILE_USER);
    c.g.wait_for_audit("two commits, a denial, the hostile login", |r| {
        audit_events(r, "committed").len() == 2
            && audit_events(r, "decision")
                .iter()
                .any(|d| d["allowed"] == false)
            && audit_events(r, "auth")
                .iter()
                .any(|a| a["user"] == HOSTILE_USER)
    });

    // Everything, escaped: the hostile names appear only as text.
    let page = c.get("viewer", "/console/audit");
    assert_eq!(page.code, 200, "{page:?}");
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;.txt")
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    let chain = element(&page.body, "p", "chain");
    assert!(
        chain.contains("verified") && !chain.contains("BROKEN"),
        "{chain}"
    );
    let head = element(&page.body, "code", "head");
    let head = &head[head.find('>').unwrap() + 1..];
    let log = std::fs::read_to_string(c.g.audit_path()).unwrap();
    assert!(
        head.len() == 64 && log.contains(&format!("\"hash\":\"{head}\"")),
        "{head}"
    );

    // Filters narrow.
    let acme = c.get("viewer", "/console/audit?tenant=acme&type=committed");
    let mut got = objects(&acme.body);
    got.sort();
    let hostile_object = "acme/&lt;script&gt;alert(1)&lt;/script&gt;.txt".to_string();
    assert_eq!(
        got,
        [hostile_object, "acme/plain.bin".to_string()],
        "{}",
        acme.body
    );
    let denied = c.get("viewer", "/console/audit?user=dave&outcome=denied");
    assert_eq!(
        objects(&denied.body),
        ["gamma/denied.bin"],
        "{}",
        denied.body
    );
    let period = c.get("viewer", "/console/audit?tenant=acme&to=2000-01-01");
    assert!(objects(&period.body).is_empty());
    let bad = c.get("viewer", "/console/audit?from=yesterday");
    assert_eq!(bad.code, 400, "{bad:?}");

    // Exports list exactly the selection, and each is an audit record.
    let csv = c.get(
        "viewer",
        "/console/audit/export?format=csv&tenant=acme&type=committed",
    );
    assert_eq!(csv.code, 200, "{csv:?}");
    let mut rd = csv::Reader::from_reader(csv.body.as_bytes());
    let mut exported: Vec<String> = rd
        .records()
        .map(|r| r.unwrap().get(5).unwrap().to_string())
        .collect();
    exported.sort();
    let raw_hostile = format!("acme/{HOSTILE_FILE}");
    assert_eq!(
        exported,
        [raw_hostile.clone(), "acme/plain.bin".to_string()]
    );
    let json = c.get(
        "viewer",
        "/console/audit/export?format=json&user=alice&type=committed",
    );
    let json: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    let mut objs: Vec<&str> = json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["object"].as_str().unwrap())
        .collect();
    objs.sort();
    assert_eq!(objs, [raw_hostile.as_str(), "acme/plain.bin"]);
    let acts = c.console_records();
    let targets: Vec<&str> = acts
        .iter()
        .filter(|r| r["event"]["action"] == "export" && r["event"]["officer"] == "viewer")
        .map(|r| r["event"]["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "audit: tenant=acme; type=committed",
            "audit: user=alice; type=committed"
        ]
    );

    // The register: the page escapes, the CSV download is the CLI's, byte for byte.
    let reg = c.get(
        "viewer",
        &format!("/console/register?tenant=acme&{ALL_TIME}"),
    );
    assert_eq!(reg.code, 200, "{reg:?}");
    assert!(reg.body.contains("id=\"register\"") && reg.body.contains("register-csv"));
    assert!(!reg.body.contains("<script>alert") && reg.body.contains("&lt;script&gt;alert(1)"));
    let audit = c.g.audit_path();
    let want = cli_register(&[audit.as_path(), other.as_path()], "acme");
    let got = c.get(
        "viewer",
        &format!("/console/register/export?format=csv&tenant=acme&{ALL_TIME}"),
    );
    assert_eq!(got.code, 200, "{got:?}");
    assert_eq!(got.body, String::from_utf8(want).unwrap());
    let printed = c.get(
        "viewer",
        &format!("/console/register?tenant=acme&{ALL_TIME}&print=1"),
    );
    assert!(!printed.body.contains("<nav") && !printed.body.contains("<form"));
    assert!(printed.body.contains(" by viewer"), "{}", printed.body);
    let acts = c.console_records();
    let reg_acts: Vec<(&str, &str)> = acts
        .iter()
        .filter(|r| {
            r["event"]["target"]
                .as_str()
                .unwrap()
                .starts_with("register:")
        })
        .map(|r| {
            (
                r["event"]["action"].as_str().unwrap(),
                r["event"]["target"].as_str().unwrap(),
            )
        })
        .collect();
    let target = "register: tenant=acme; from=2000-01-01; to=2100-01-01";
    assert_eq!(reg_acts, [("export", target), ("print", target)]);

    // A log with a record removed: BROKEN on both pages.
    let lines: Vec<&str> = log.lines().collect();
    let cut: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&other, cut.join("\n") + "\n").unwrap();
    let page = c.get("viewer", "/console/audit");
    assert!(
        element(&page.body, "p", "chain").contains("BROKEN"),
        "{}",
        page.body
    );
    assert!(page.body.contains("BROKEN at line 2"));
    let reg = c.get("viewer", &format!("/console/register?{ALL_TIME}"));
    assert!(element(&reg.body, "td", "register-chain").contains("BROKEN"));
}
