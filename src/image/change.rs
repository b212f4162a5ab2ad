//! `--change 'INSTR'`: the Dockerfile instructions `docker commit --change`
//! and `docker import --change` take, parsed as a Dockerfile parses them and
//! applied to the `config` object of an image config (Docker's field names:
//! `Cmd`, `Entrypoint`, `Env`, …).

use serde_json::{Map, Value, json};

/// An instruction `--change` does not take, or one that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("--change {}: {reason}", crate::display::escape(.given))]
pub struct ChangeError {
    /// The instruction as given.
    pub given: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The instructions `--change` takes, as `docker commit` lists them.
pub const KEYS: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One parsed instruction.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// `CMD`: the command, in exec form (shell form wrapped in `/bin/sh -c`).
    Cmd(Vec<String>),
    /// `ENTRYPOINT`, likewise.
    Entrypoint(Vec<String>),
    /// `ENV`: variables in order.
    Env(Vec<(String, String)>),
    /// `EXPOSE`: `PORT/PROTO` keys.
    Expose(Vec<String>),
    /// `HEALTHCHECK`: the `Healthcheck` object.
    Healthcheck(Value),
    /// `LABEL`: labels in order.
    Label(Vec<(String, String)>),
    /// `ONBUILD`: a trigger kept for a later build.
    Onbuild(String),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `USER`.
    User(String),
    /// `VOLUME`: mount points.
    Volume(Vec<String>),
    /// `WORKDIR`.
    Workdir(String),
}

impl Change {
    /// Parses one instruction (`CMD ["nginx", "-g", "daemon off;"]`).
    pub fn parse(given: &str) -> Result<Self, ChangeError> {
        let error = |reason: &str| ChangeError {
            given: given.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = given.trim();
        let (keyword, rest) = trimmed
            .split_once(char::is_whitespace)
            .map_or((trimmed, ""), |(k, r)| (k, r.trim()));
        let keyword = keyword.to_ascii_uppercase();
        if !KEYS.contains(&keyword.as_str()) {
            return Err(error(&format!(
                "{} is not an instruction --change takes (it takes {})",
                if keyword.is_empty() {
                    "an empty string".to_owned()
                } else {
                    format!("\"{}\"", crate::display::escape(&keyword))
                },
                KEYS.join(", ")
            )));
        }
        if rest.is_empty() {
            return Err(error(&format!("{keyword} needs an argument")));
        }
        let parsed = match keyword.as_str() {
            "CMD" => Self::Cmd(command(rest).map_err(|r| error(&r))?),
            "ENTRYPOINT" => Self::Entrypoint(command(rest).map_err(|r| error(&r))?),
            "ENV" => Self::Env(pairs(rest, "ENV").map_err(|r| error(&r))?),
            "LABEL" => Self::Label(pairs(rest, "LABEL").map_err(|r| error(&r))?),
            "EXPOSE" => Self::Expose(ports(rest).map_err(|r| error(&r))?),
            "HEALTHCHECK" => Self::Healthcheck(healthcheck(rest).map_err(|r| error(&r))?),
            "ONBUILD" => Self::Onbuild(onbuild(rest).map_err(|r| error(&r))?),
            "STOPSIGNAL" => Self::StopSignal(signal(rest).map_err(|r| error(&r))?),
            "USER" => Self::User(single(rest, "USER").map_err(|r| error(&r))?),
            "VOLUME" => Self::Volume(volumes(rest).map_err(|r| error(&r))?),
            "WORKDIR" => Self::Workdir(single(rest, "WORKDIR").map_err(|r| error(&r))?),
            _ => unreachable!("every key in KEYS is matched"),
        };
        Ok(parsed)
    }
}

/// Applies `changes`, in order, to the `config` object of an image config.
/// As in a Dockerfile, an `ENTRYPOINT` clears the command unless a `CMD` is
/// among the changes too.
pub fn apply(config: &mut Map<String, Value>, changes: &[Change]) {
    let cmd_given = changes.iter().any(|c| matches!(c, Change::Cmd(_)));
    for change in changes {
        match change {
            Change::Cmd(cmd) => {
                config.insert("Cmd".into(), json!(cmd));
            }
            Change::Entrypoint(entrypoint) => {
                config.insert("Entrypoint".into(), json!(entrypoint));
                if !cmd_given {
                    config.insert("Cmd".into(), Value::Null);
                }
            }
            Change::Env(vars) => {
                let mut env: Vec<String> = string_list(config.get("Env"));
                for (key, value) in vars {
                    let prefix = format!("{key}=");
                    env.retain(|e| !e.starts_with(&prefix) && e != key);
                    env.push(format!("{key}={value}"));
                }
                config.insert("Env".into(), json!(env));
            }
            Change::Label(labels) => {
                let entry = object(config, "Labels");
                for (key, value) in labels {
                    entry.insert(key.clone(), json!(value));
                }
            }
            Change::Expose(ports) => {
                let entry = object(config, "ExposedPorts");
                for port in ports {
                    entry.insert(port.clone(), json!({}));
                }
            }
            Change::Volume(paths) => {
                let entry = object(config, "Volumes");
                for path in paths {
                    entry.insert(path.clone(), json!({}));
                }
            }
            Change::Healthcheck(check) => {
                config.insert("Healthcheck".into(), check.clone());
            }
            Change::Onbuild(trigger) => {
                let mut triggers = string_list(config.get("OnBuild"));
                triggers.push(trigger.clone());
                config.insert("OnBuild".into(), json!(triggers));
            }
            Change::StopSignal(signal) => {
                config.insert("StopSignal".into(), json!(signal));
            }
            Change::User(user) => {
                config.insert("User".into(), json!(user));
            }
            Change::Workdir(dir) => {
                let dir = if dir.starts_with('/') {
                    dir.clone()
                } else {
                    let base = config
                        .get("WorkingDir")
                        .and_then(Value::as_str)
                        .filter(|d| !d.is_empty())
                        .unwrap_or("/");
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                config.insert("WorkingDir".into(), json!(dir));
            }
        }
    }
}

/// True when a container made from `config` has something to run.
pub fn has_command(config: &Map<String, Value>) -> bool {
    let non_empty = |key| {
        config
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    non_empty("Cmd") || non_empty("Entrypoint")
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = config.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// The JSON (exec) form, if `text` is one: a JSON array of strings.
fn json_form(text: &str) -> Option<Vec<String>> {
    if !text.starts_with('[') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// `CMD`/`ENTRYPOINT`: exec form, or shell form run by `/bin/sh -c`.
fn command(text: &str) -> Result<Vec<String>, String> {
    Ok(json_form(text).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), text.into()]))
}

/// `KEY=VALUE …` (values quoted as a shell would), or the old `KEY VALUE`.
fn pairs(text: &str, keyword: &str) -> Result<Vec<(String, String)>, String> {
    let words = words(text)?;
    let first_has_equals = words
        .first()
        .is_some_and(|w| w.split_once('=').is_some_and(|(k, _)| !k.is_empty()));
    if !first_has_equals {
        // The old form: the first word is the key, the rest of the line its value.
        let (key, value) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{keyword} needs KEY=VALUE"))?;
        return Ok(vec![(key.to_owned(), value.trim().to_owned())]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
            _ => Err(format!("{keyword} needs KEY=VALUE, not \"{word}\"")),
        })
        .collect()
}

/// Splits `text` into words as a Dockerfile does: whitespace separates,
/// single and double quotes group, a backslash escapes the next character.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// `EXPOSE 80 443/tcp 53/udp 8000-8001`.
fn ports(text: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    for word in words(text)? {
        let (range, protocol) = word.split_once('/').unwrap_or((&word, "tcp"));
        let protocol = protocol.to_ascii_lowercase();
        if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("EXPOSE takes tcp, udp or sctp, not \"{protocol}\""));
        }
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("EXPOSE: \"{word}\" is not a port"))
        };
        let (first, last) = (port(first)?, port(last)?);
        if first > last {
            return Err(format!("EXPOSE: \"{word}\" is not a port range"));
        }
        keys.extend((first..=last).map(|p| format!("{p}/{protocol}")));
    }
    Ok(keys)
}

/// `VOLUME ["/a", "/b"]` or `VOLUME /a /b`.
fn volumes(text: &str) -> Result<Vec<String>, String> {
    let paths = json_form(text).map_or_else(|| words(text), Ok)?;
    if paths.iter().any(String::is_empty) || paths.is_empty() {
        return Err("VOLUME needs a path".into());
    }
    Ok(paths)
}

/// `USER`/`WORKDIR`: one value (quotes removed).
fn single(text: &str, keyword: &str) -> Result<String, String> {
    match words(text)?.as_slice() {
        [one] if !one.is_empty() => Ok(one.clone()),
        _ => Err(format!("{keyword} takes one value")),
    }
}

/// `STOPSIGNAL SIGTERM`, `STOPSIGNAL 15`, `STOPSIGNAL SIGRTMIN+3`.
fn signal(text: &str) -> Result<String, String> {
    let signal = single(text, "STOPSIGNAL")?;
    let upper = signal.to_ascii_uppercase();
    let name = upper
        .strip_prefix("SIG")
        .unwrap_or(&upper)
        .split('+')
        .next()
        .unwrap_or_default();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if valid {
        Ok(signal)
    } else {
        Err(format!("\"{signal}\" is not a signal"))
    }
}

/// `ONBUILD INSTR`: any instruction but `ONBUILD`, `FROM` and `MAINTAINER`.
fn onbuild(text: &str) -> Result<String, String> {
    let keyword = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    if matches!(keyword.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
        return Err(format!("ONBUILD cannot trigger {keyword}"));
    }
    Ok(text.to_owned())
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D …] CMD command`.
fn healthcheck(text: &str) -> Result<Value, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(json!({ "Test": ["NONE"] }));
    }
    let mut check = Map::new();
    let mut rest = text;
    while let Some(option) = rest.strip_prefix("--") {
        let (flag, after) = option
            .split_once(char::is_whitespace)
            .ok_or("HEALTHCHECK needs CMD after its options")?;
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| format!("HEALTHCHECK --{flag} needs a value"))?;
        let (key, value) = match name {
            "interval" => ("Interval", json!(duration(value)?)),
            "timeout" => ("Timeout", json!(duration(value)?)),
            "start-period" => ("StartPeriod", json!(duration(value)?)),
            "start-interval" => ("StartInterval", json!(duration(value)?)),
            "retries" => (
                "Retries",
                json!(
                    value
                        .parse::<u32>()
                        .map_err(|_| format!("HEALTHCHECK --retries={value} is not a number"))?
                ),
            ),
            other => return Err(format!("HEALTHCHECK has no option --{other}")),
        };
        check.insert(key.into(), value);
        rest = after.trim_start();
    }
    let (keyword, command) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(k, c)| (k, c.trim()));
    if !keyword.eq_ignore_ascii_case("cmd") || command.is_empty() {
        return Err("HEALTHCHECK takes NONE or [OPTIONS] CMD command".into());
    }
    let test = match json_form(command) {
        Some(exec) => std::iter::once("CMD".to_owned()).chain(exec).collect(),
        None => vec!["CMD-SHELL".to_owned(), command.to_owned()],
    };
    check.insert("Test".into(), json!(test));
    Ok(Value::Object(check))
}

/// A Go duration (`30s`, `1m30s`, `500ms`) in nanoseconds.
fn duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("\"{text}\" is not a duration (like 30s, 1m30s, 500ms)");
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        total = number
            .checked_mul(scale)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(invalid)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(config: Value, changes: &[&str]) -> Value {
        let changes: Vec<Change> = changes.iter().map(|c| Change::parse(c).unwrap()).collect();
        let mut config = config.as_object().unwrap().clone();
        apply(&mut config, &changes);
        Value::Object(config)
    }

    #[test]
    fn cmd_and_entrypoint_take_the_json_and_the_shell_form() {
        assert_eq!(
            Change::parse(r#"CMD ["nginx", "-g", "daemon off;"]"#).unwrap(),
            Change::Cmd(vec!["nginx".into(), "-g".into(), "daemon off;".into()])
        );
        assert_eq!(
            Change::parse("cmd echo hi && sleep 1").unwrap(),
            Change::Cmd(vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo hi && sleep 1".into()
            ])
        );
        // Not a JSON array of strings: the shell form, as a Dockerfile reads it.
        assert_eq!(
            Change::parse("ENTRYPOINT [1, 2]").unwrap(),
            Change::Entrypoint(vec!["/bin/sh".into(), "-c".into(), "[1, 2]".into()])
        );
    }

    #[test]
    fn an_entrypoint_clears_the_command_unless_one_is_given_too() {
        let config = json!({"Cmd": ["old"], "Entrypoint": null});
        let only = applied(config.clone(), &[r#"ENTRYPOINT ["/app"]"#]);
        assert_eq!(only["Cmd"], Value::Null);
        assert_eq!(only["Entrypoint"], json!(["/app"]));
        let both = applied(config, &[r#"ENTRYPOINT ["/app"]"#, r#"CMD ["--serve"]"#]);
        assert_eq!(both["Cmd"], json!(["--serve"]));
    }

    #[test]
    fn env_and_label_take_quoted_pairs_and_the_old_form() {
        assert_eq!(
            Change::parse(r#"ENV A=1 B="two words" C=three\ words"#).unwrap(),
            Change::Env(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "three words".into()),
            ])
        );
        assert_eq!(
            Change::parse("ENV PATH /usr/bin:/bin").unwrap(),
            Change::Env(vec![("PATH".into(), "/usr/bin:/bin".into())])
        );
        let config = applied(
            json!({"Env": ["PATH=/bin", "A=0"], "Labels": null}),
            &["ENV A=1", "LABEL org.example.v=2 x='y z'"],
        );
        assert_eq!(config["Env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(config["Labels"], json!({"org.example.v": "2", "x": "y z"}));
    }

    #[test]
    fn expose_volume_workdir_user_and_stopsignal() {
        let config = applied(
            json!({"WorkingDir": "/srv"}),
            &[
                "EXPOSE 80 53/udp 8000-8001",
                r#"VOLUME ["/data"]"#,
                "VOLUME /logs /cache",
                "WORKDIR app",
                "USER 65534:65534",
                "STOPSIGNAL SIGQUIT",
            ],
        );
        assert_eq!(
            config["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(
            config["Volumes"],
            json!({"/data": {}, "/logs": {}, "/cache": {}})
        );
        assert_eq!(config["WorkingDir"], json!("/srv/app"));
        assert_eq!(config["User"], json!("65534:65534"));
        assert_eq!(config["StopSignal"], json!("SIGQUIT"));
    }

    #[test]
    fn healthcheck_takes_options_and_both_forms() {
        assert_eq!(
            Change::parse("HEALTHCHECK --interval=1m30s --retries=3 CMD curl -f http://x/")
                .unwrap(),
            Change::Healthcheck(json!({
                "Interval": 90_000_000_000u64,
                "Retries": 3,
                "Test": ["CMD-SHELL", "curl -f http://x/"],
            }))
        );
        assert_eq!(
            Change::parse(r#"HEALTHCHECK CMD ["/bin/check"]"#).unwrap(),
            Change::Healthcheck(json!({"Test": ["CMD", "/bin/check"]}))
        );
        assert_eq!(
            Change::parse("HEALTHCHECK NONE").unwrap(),
            Change::Healthcheck(json!({"Test": ["NONE"]}))
        );
    }

    #[test]
    fn onbuild_keeps_its_trigger() {
        let config = applied(json!({}), &["ONBUILD RUN make"]);
        assert_eq!(config["OnBuild"], json!(["RUN make"]));
    }

    #[test]
    fn bad_instructions_are_refused_naming_them() {
        for (given, expected) in [
            ("RUN make", "\"RUN\" is not an instruction --change takes"),
            ("FROM alpine", "\"FROM\" is not an instruction"),
            ("", "an empty string is not an instruction"),
            ("CMD", "CMD needs an argument"),
            ("EXPOSE 99999", "is not a port"),
            ("EXPOSE 80/icmp", "tcp, udp or sctp"),
            ("HEALTHCHECK --interval=soon CMD true", "is not a duration"),
            ("HEALTHCHECK --every=1s CMD true", "no option --every"),
            ("HEALTHCHECK true", "NONE or [OPTIONS] CMD"),
            ("ONBUILD FROM alpine", "cannot trigger FROM"),
            ("STOPSIGNAL kill me", "takes one value"),
            ("STOPSIGNAL sig-term", "is not a signal"),
            ("ENV A=\"open", "quote is not closed"),
            ("ENV =x", "needs KEY=VALUE"),
            ("USER a b", "takes one value"),
        ] {
            let error = Change::parse(given).unwrap_err().to_string();
            assert!(error.starts_with("--change "), "{error}");
            assert!(error.contains(expected), "{given:?}: {error}");
        }
    }

    #[test]
    fn a_command_is_a_cmd_or_an_entrypoint() {
        let config = |v: Value| v.as_object().unwrap().clone();
        assert!(!has_command(&config(json!({}))));
        assert!(!has_command(&config(
            json!({"Cmd": null, "Entrypoint": []})
        )));
        assert!(has_command(&config(json!({"Cmd": ["sh"]}))));
        assert!(has_command(&config(json!({"Entrypoint": ["/app"]}))));
    }
}
