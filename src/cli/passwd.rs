//! `eugate passwd`: read a password from stdin, print its argon2id PHC string for `password_hash`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use argon2::password_hash::{PasswordHasher, SaltString};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

pub fn run() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let second = prompt_hidden("Again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing printed");
        }
        first
    } else {
        // From a pipe: one line, without its line ending.
        let mut line = Zeroizing::new(String::new());
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string())
    };
    if password.is_empty() {
        bail!("empty password refused; type one or pipe one line into `eugate passwd`");
    }
    println!("{}", hash(password.as_bytes())?);
    Ok(())
}

/// argon2id with the crate's defaults (OWASP-recommended m=19 MiB, t=2, p=1) and a random salt.
pub fn hash(password: &[u8]) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let phc = argon2::Argon2::default()
        .hash_password(password, &salt)
        .map_err(|e| anyhow::anyhow!("argon2id: {e}"))?;
    Ok(phc.to_string())
}

/// Turns terminal echo off with `stty` (no unsafe termios code in this crate) while reading.
fn prompt_hidden(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    let echo_off = stty("-echo").map(|s| s.success()).unwrap_or(false);
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        let _ = stty("echo");
    }
    eprintln!();
    read.context("reading the password from the terminal")?;
    Ok(Zeroizing::new(
        line.trim_end_matches(['\r', '\n']).to_string(),
    ))
}
