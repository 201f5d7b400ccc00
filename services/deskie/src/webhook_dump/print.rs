//! How a dumped webhook is printed: a `#` line, then the body as Chatra sent it.

use std::io::{self, Write};

use chrono::SecondsFormat;

use super::CapturedWebhook;
use super::token::TokenGuard;

/// Prints one webhook: a `#` line (sequence, when received, event), then the body,
/// indented when it is JSON, else as received (lossy UTF-8) and marked so; a blank line.
pub fn write_webhook(
    out: &mut impl Write,
    webhook: &CapturedWebhook,
    token: &TokenGuard,
) -> io::Result<()> {
    let received = webhook.received_at.map_or_else(
        || "unknown".to_owned(),
        |at| at.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    let body = token.scrub(&String::from_utf8_lossy(&webhook.body));
    // An `eventName` we do not route is kept as Chatra sent it: one line, no token.
    let event_name: String = token
        .scrub(&webhook.event_name)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    let is_json = std::str::from_utf8(&webhook.body).is_ok()
        && serde_json::from_str::<serde_json::Value>(&body).is_ok();
    write!(
        out,
        "# sequence {}, received {received}, {event_name}",
        webhook.sequence
    )?;
    if is_json {
        writeln!(out)?;
        writeln!(out, "{}", indent_json(&body))?;
    } else {
        writeln!(out, ", NOT JSON: printed as received (lossy UTF-8)")?;
        writeln!(out, "{body}")?;
    }
    writeln!(out)
}

/// Valid JSON re-indented by two spaces, every token kept as written: numbers keep their
/// form (`1.7326e12` stays so, `1000.0` stays a float) and strings their escapes, which
/// parsing and printing again would not do, and a fixture must show Chatra's forms.
pub fn indent_json(json: &str) -> String {
    fn newline(out: &mut String, depth: usize) {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    }
    let is_space = |c: &char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut chars = json.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                out.push(c);
                while chars.next_if(is_space).is_some() {}
                if let Some(close) = chars.next_if(|n| matches!(n, '}' | ']')) {
                    out.push(close);
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if is_space(&c) => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_indented_with_every_token_as_written() {
        let body = r#"{"eventName":"chatFragment","client":{"id":"c 1","info":{}},"messages":[{"text":"a \"quoted\" {x}, [y]: z\u00e9","createdAt":1.7326080001235E12},{"createdAt":1000.0,"n":-0,"ok":true,"none":null}],"agents":[]}"#;
        let expected = r#"{
  "eventName": "chatFragment",
  "client": {
    "id": "c 1",
    "info": {}
  },
  "messages": [
    {
      "text": "a \"quoted\" {x}, [y]: z\u00e9",
      "createdAt": 1.7326080001235E12
    },
    {
      "createdAt": 1000.0,
      "n": -0,
      "ok": true,
      "none": null
    }
  ],
  "agents": []
}"#;
        assert_eq!(indent_json(body), expected);
        let reparsed: serde_json::Value = serde_json::from_str(&indent_json(body)).expect("json");
        assert_eq!(
            reparsed,
            serde_json::from_str::<serde_json::Value>(body).expect("json")
        );
    }

    #[test]
    fn already_indented_json_is_indented_the_same() {
        let body = "{\n\t\"a\" : [ 1 , 2 ],\r\n \"b\" : { } }";
        assert_eq!(
            indent_json(body),
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {}\n}"
        );
    }
}
