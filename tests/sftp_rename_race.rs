//! Rename never overwrites, through the real gateway: two paramiko clients race renames of
//! different files onto one new name (tests/scripts/rename_race.py).

mod common;

use std::process::Command;

use common::{Gateway, scripts};

const ROUNDS: usize = 60;

#[test]
fn two_clients_renaming_onto_one_name_exactly_one_wins() {
    let g = Gateway::start();
    let out = Command::new("python3")
        .arg(scripts().join("rename_race.py"))
        .args(["--port", &g.port.to_string(), "--user", "alice", "--key"])
        .arg(g.key("alice"))
        .args(["--rounds", &ROUNDS.to_string()])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "script output not JSON ({e}): {}\n{}\n--- gateway log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            g.log()
        )
    });
    let rounds = v["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), ROUNDS);
    for (r, round) in rounds.iter().enumerate() {
        let results = round["results"].as_array().unwrap();
        let wins: Vec<usize> = (0..2).filter(|&i| results[i] == "ok").collect();
        assert_eq!(wins.len(), 1, "round {r}: {round}");
        let (w, l) = (wins[0], 1 - wins[0]);
        assert_eq!(round["target"], format!("{r}-{w}"), "round {r}: {round}");
        assert_eq!(round["sources"][w], serde_json::Value::Null, "round {r}");
        assert_eq!(
            round["sources"][l],
            format!("{r}-{l}"),
            "round {r}: the loser's file is still there, unchanged: {round}"
        );
    }
}
