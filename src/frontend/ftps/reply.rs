//! FTP replies: a three-digit code and text, multi-line when the text has several lines
//! (RFC 959 4.2). Control characters in the text (from file names or errors) are replaced, so a
//! reply can never be split into forged lines.

pub fn format(code: u16, text: &str) -> String {
    let lines: Vec<String> = text.lines().map(clean).collect();
    match lines.as_slice() {
        [] => format!("{code} \r\n"),
        [one] => format!("{code} {one}\r\n"),
        [first, middle @ .., last] => {
            let mut out = format!("{code}-{first}\r\n");
            for m in middle {
                out.push(' ');
                out.push_str(m);
                out.push_str("\r\n");
            }
            out.push_str(&format!("{code} {last}\r\n"));
            out
        }
    }
}

fn clean(line: &str) -> String {
    line.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A path in a 257 reply: inside double quotes, quotes doubled (RFC 959 appendix II).
pub fn quoted(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        assert_eq!(format(200, "ok"), "200 ok\r\n");
        assert_eq!(
            format(211, "Features:\nUTF8\nEnd"),
            "211-Features:\r\n UTF8\r\n211 End\r\n"
        );
        assert_eq!(format(550, "a\r\nb"), "550-a\r\n550 b\r\n");
    }

    #[test]
    fn control_characters_cannot_forge_lines() {
        assert_eq!(format(550, "x\r200 fake"), "550 x?200 fake\r\n");
        assert_eq!(quoted("/a\"b"), "\"/a\"\"b\"");
    }
}
