//! FTP command lines (RFC 959, 2228, 2389, 2428, 3659, 4217) parsed into [`Command`]. Parsing
//! never fails on bad input: unknown verbs and missing arguments become their own variants, so
//! the control loop answers every line with a precise reply.

use zeroize::Zeroizing;

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Auth(String),
    Pbsz(String),
    Prot(String),
    Ccc,
    User(String),
    Pass(Zeroizing<String>),
    Feat,
    Opts(String),
    Type(String),
    Mode(String),
    Stru(String),
    Syst,
    Noop,
    Quit,
    Pwd,
    Cwd(String),
    Cdup,
    Pasv,
    Epsv(Option<String>),
    /// PORT or EPRT: active mode, refused.
    Active,
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Rest(String),
    Stor(String),
    Appe(String),
    Retr(String),
    Dele(String),
    Mkd(String),
    Rmd(String),
    Rnfr(String),
    Rnto(String),
    Abor,
    /// A known verb sent without the argument it needs.
    MissingArgument(&'static str),
    /// A verb eugate does not implement (upper-cased, at most 16 characters kept).
    Unknown(String),
}

/// Parses one line (without its CR LF). Verbs are case-insensitive; the argument is the rest of
/// the line after one space, kept as sent (file names may hold spaces).
pub fn parse(line: &str) -> Command {
    let line = line.trim_end_matches(['\r', '\n']);
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, a),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    let arg = arg.to_string();
    let optional = || (!arg.is_empty()).then(|| arg.clone());
    let required = |make: fn(String) -> Command, name: &'static str| {
        if arg.is_empty() {
            Command::MissingArgument(name)
        } else {
            make(arg.clone())
        }
    };
    match verb.as_str() {
        "AUTH" => required(Command::Auth, "AUTH"),
        "PBSZ" => required(Command::Pbsz, "PBSZ"),
        "PROT" => required(Command::Prot, "PROT"),
        "CCC" => Command::Ccc,
        "USER" => required(Command::User, "USER"),
        "PASS" => Command::Pass(Zeroizing::new(arg)),
        "FEAT" => Command::Feat,
        "OPTS" => required(Command::Opts, "OPTS"),
        "TYPE" => required(Command::Type, "TYPE"),
        "MODE" => required(Command::Mode, "MODE"),
        "STRU" => required(Command::Stru, "STRU"),
        "SYST" => Command::Syst,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => required(Command::Cwd, "CWD"),
        "CDUP" | "XCUP" => Command::Cdup,
        "PASV" => Command::Pasv,
        "EPSV" => Command::Epsv(optional()),
        "PORT" | "EPRT" => Command::Active,
        "LIST" => Command::List(listing_path(&arg)),
        "NLST" => Command::Nlst(listing_path(&arg)),
        "MLSD" => Command::Mlsd(optional()),
        "MLST" => Command::Mlst(optional()),
        "SIZE" => required(Command::Size, "SIZE"),
        "MDTM" => required(Command::Mdtm, "MDTM"),
        "REST" => required(Command::Rest, "REST"),
        "STOR" => required(Command::Stor, "STOR"),
        "APPE" => required(Command::Appe, "APPE"),
        "RETR" => required(Command::Retr, "RETR"),
        "DELE" => required(Command::Dele, "DELE"),
        "MKD" | "XMKD" => required(Command::Mkd, "MKD"),
        "RMD" | "XRMD" => required(Command::Rmd, "RMD"),
        "RNFR" => required(Command::Rnfr, "RNFR"),
        "RNTO" => required(Command::Rnto, "RNTO"),
        "ABOR" => Command::Abor,
        _ => Command::Unknown(verb.chars().take(16).collect()),
    }
}

/// LIST and NLST arguments may start with `ls` options (`LIST -la`, `LIST -a dir`), which
/// clients send out of habit: they are dropped, and the rest is the path.
fn listing_path(arg: &str) -> Option<String> {
    let mut rest = arg.trim_start();
    while rest.starts_with('-') {
        rest = rest
            .split_once(' ')
            .map(|(_, r)| r.trim_start())
            .unwrap_or("");
    }
    (!rest.is_empty()).then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_arguments_kept() {
        assert_eq!(parse("user bob"), Command::User("bob".into()));
        assert_eq!(parse("AUTH TLS\r\n"), Command::Auth("TLS".into()));
        assert_eq!(
            parse("STOR my file.txt"),
            Command::Stor("my file.txt".into())
        );
        assert_eq!(parse("Retr  two"), Command::Retr(" two".into()));
        assert_eq!(parse("xpwd"), Command::Pwd);
        assert_eq!(
            parse("PASS secret"),
            Command::Pass(Zeroizing::new("secret".into()))
        );
        assert_eq!(parse("PASS"), Command::Pass(Zeroizing::new(String::new())));
    }

    #[test]
    fn missing_arguments_are_named() {
        assert_eq!(parse("STOR"), Command::MissingArgument("STOR"));
        assert_eq!(parse("USER "), Command::MissingArgument("USER"));
        assert_eq!(parse("RNTO"), Command::MissingArgument("RNTO"));
    }

    #[test]
    fn active_mode_and_unknown_verbs() {
        assert_eq!(parse("PORT 10,0,0,1,4,1"), Command::Active);
        assert_eq!(parse("EPRT |1|10.0.0.1|1025|"), Command::Active);
        assert_eq!(parse("SITE CHMOD 777 x"), Command::Unknown("SITE".into()));
        assert_eq!(parse(""), Command::Unknown(String::new()));
        let long = "X".repeat(100);
        assert_eq!(parse(&long), Command::Unknown("X".repeat(16)));
    }

    #[test]
    fn listing_options_are_dropped() {
        assert_eq!(parse("LIST"), Command::List(None));
        assert_eq!(parse("LIST -la"), Command::List(None));
        assert_eq!(parse("LIST -a dir"), Command::List(Some("dir".into())));
        assert_eq!(parse("NLST dir x"), Command::Nlst(Some("dir x".into())));
        assert_eq!(parse("MLSD"), Command::Mlsd(None));
        assert_eq!(parse("EPSV ALL"), Command::Epsv(Some("ALL".into())));
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "\u{0}\u{0}",
            " ",
            "  STOR",
            "é",
            "RNFR é/ü",
            "\r\n",
            "LIST - - -",
        ] {
            let _ = parse(s);
        }
    }
}
