//! OpenWrt's UCI config syntax (`/etc/config/storegate`, or `uci export`
//! output) translated into storegate's TOML, for `storegate uci-to-toml`.
//!
//! Each UCI section type is a TOML table with the same name (`config portal`
//! → `[portal]`) and each option or list a key with the same name
//! (`option session_timeout '8h'` → `session_timeout = "8h"`). The result is
//! validated by [`Config::parse`], as `run` will load it (the files it names,
//! such as `hq.secret_file`, are read too), and errors name the UCI section,
//! option and line, never the generated TOML.
//!
//! The parser is pure: text in, sections or an error with a line number out.
//! Supported syntax, as `uci` writes and reads it: `package NAME`,
//! `config TYPE ['NAME']`, `option KEY 'VALUE'`, `list KEY 'VALUE'`,
//! `# comments`, single quotes (no escapes), double quotes (backslash
//! escapes), backslash escapes outside quotes, and adjacent quoted parts
//! (`'it'\''s'`). Not supported: values spanning lines.

use std::fmt;

use super::Config;

/// A section type the init script reads and the TOML does not have.
const SERVICE_SECTION: &str = "service";

/// The TOML tables, in the order they are written.
const SECTIONS: &[&str] = &[
    "store",
    "lan",
    "portal",
    "firewall",
    "presence",
    "members",
    "members_wifi",
    "privacy",
    "storage",
    "hq",
    "dashboard",
    "control",
];

/// UCI section types whose TOML table is nested (`config members_wifi` →
/// `[members.wifi]`): UCI has no nesting.
const NESTED: &[(&str, &str)] = &[("members_wifi", "members.wifi")];

/// The TOML table a UCI section type is written as.
fn toml_table(section: &str) -> &str {
    NESTED
        .iter()
        .find(|(uci, _)| *uci == section)
        .map_or(section, |(_, table)| table)
}

/// Sections the TOML requires.
const REQUIRED: &[&str] = &["store", "lan", "storage"];

/// How a UCI string becomes a TOML value. Keys not listed are strings, so a
/// new string key needs no change here; a new number, flag or list does (the
/// unit test `schema_covers_the_example_config` catches a missing one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    List,
}

const TYPED_KEYS: &[(&str, &str, Kind)] = &[
    ("portal", "walled_garden", Kind::List),
    ("portal", "max_connections", Kind::Int),
    ("portal", "max_connections_per_client", Kind::Int),
    ("presence", "staff_devices", Kind::List),
    ("presence", "resident_min_days", Kind::Int),
    ("presence", "new_devices_per_minute", Kind::Int),
    ("members", "remember_days", Kind::Int),
    ("members", "max_devices", Kind::Int),
    ("members", "otp_max_attempts", Kind::Int),
    ("members", "otp_countries", Kind::List),
    ("members", "otp_per_hour", Kind::Int),
    ("members", "otp_per_prefix_per_hour", Kind::Int),
    ("members", "member_number_trusted", Kind::Bool),
    ("members", "member_number_per_hour", Kind::Int),
    ("members", "max_members", Kind::Int),
    ("members_wifi", "hostapd_ctrl", Kind::List),
    ("members_wifi", "allow_member_number", Kind::Bool),
    ("privacy", "forget_unbound_after_days", Kind::Int),
    ("storage", "outbox_max_events", Kind::Int),
    ("hq", "gzip", Kind::Bool),
    ("dashboard", "metrics_public", Kind::Bool),
    ("dashboard", "max_connections", Kind::Int),
];

fn kind_of(section: &str, key: &str) -> Kind {
    TYPED_KEYS
        .iter()
        .find(|(s, k, _)| *s == section && *k == key)
        .map(|(_, _, kind)| *kind)
        .unwrap_or(Kind::Str)
}

/// A UCI file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciFile {
    pub package: Option<String>,
    pub sections: Vec<Section>,
}

/// `config TYPE ['NAME']` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub kind: String,
    pub name: Option<String>,
    pub line: usize,
    pub options: Vec<UciOption>,
}

impl Section {
    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!(
                "section '{name}' (config {}, line {})",
                self.kind, self.line
            ),
            None => format!("section config {} (line {})", self.kind, self.line),
        }
    }

    fn option(&self, name: &str) -> Option<&UciOption> {
        self.options.iter().find(|o| o.name == name)
    }
}

/// `option KEY 'VALUE'`, or every `list KEY 'VALUE'` of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciOption {
    pub name: String,
    pub value: UciValue,
    /// The line of the option, or of a list's first item.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UciValue {
    Single(String),
    List(Vec<String>),
}

/// What is wrong, and where in the UCI file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciError {
    /// Where: `line 7`, or `section 'portal' (config portal, line 3), option
    /// 'idle_timeout' (line 5)`.
    pub place: String,
    pub problem: String,
}

impl fmt::Display for UciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.problem)
    }
}

impl std::error::Error for UciError {}

fn at_line(line: usize, problem: impl Into<String>) -> UciError {
    UciError {
        place: format!("line {line}"),
        problem: problem.into(),
    }
}

fn at_option(
    section: &Section,
    option: Option<&UciOption>,
    problem: impl Into<String>,
) -> UciError {
    let place = match option {
        Some(o) => format!("{}, option '{}' (line {})", section.label(), o.name, o.line),
        None => section.label(),
    };
    UciError {
        place,
        problem: problem.into(),
    }
}

/// Splits one line into words, honouring quotes, escapes and comments.
fn tokenize(text: &str, line: usize) -> Result<Vec<String>, UciError> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '#' if word.is_none() => break,
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(at_line(line, "unterminated single quote")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => w.push(c),
                            None => return Err(at_line(line, "unterminated double quote")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(at_line(line, "unterminated double quote")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => {
                    return Err(at_line(
                        line,
                        "backslash at the end of the line (values spanning lines are not supported)",
                    ));
                }
            },
            c if c.is_control() => {
                return Err(at_line(line, format!("control character {c:?}")));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

fn valid_name(s: &str, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
}

/// Parses UCI text. Errors carry the line number.
pub fn parse(text: &str) -> Result<UciFile, UciError> {
    let mut file = UciFile {
        package: None,
        sections: Vec::new(),
    };
    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let words = tokenize(raw_line, line)?;
        let Some(keyword) = words.first() else {
            continue;
        };
        match keyword.as_str() {
            "package" => {
                if words.len() != 2 {
                    return Err(at_line(line, "expected: package NAME"));
                }
                if !file.sections.is_empty() || file.package.is_some() {
                    return Err(at_line(line, "package must come first, and only once"));
                }
                file.package = Some(words[1].clone());
            }
            "config" => {
                if !(2..=3).contains(&words.len()) {
                    return Err(at_line(line, "expected: config TYPE ['NAME']"));
                }
                if !valid_name(&words[1], &['-']) {
                    return Err(at_line(
                        line,
                        format!("bad section type '{}' (letters, digits, _ and -)", words[1]),
                    ));
                }
                let name = words.get(2).cloned();
                if let Some(n) = &name
                    && !valid_name(n, &[])
                {
                    return Err(at_line(
                        line,
                        format!("bad section name '{n}' (letters, digits and _)"),
                    ));
                }
                file.sections.push(Section {
                    kind: words[1].clone(),
                    name,
                    line,
                    options: Vec::new(),
                });
            }
            "option" | "list" => {
                let is_list = keyword == "list";
                if words.len() != 3 {
                    return Err(at_line(
                        line,
                        format!("expected: {keyword} NAME 'VALUE' (quote values with spaces)"),
                    ));
                }
                let Some(section) = file.sections.last_mut() else {
                    return Err(at_line(
                        line,
                        format!("{keyword} before any config section"),
                    ));
                };
                let (name, value) = (&words[1], &words[2]);
                if !valid_name(name, &[]) {
                    return Err(at_line(
                        line,
                        format!("bad option name '{name}' (letters, digits and _)"),
                    ));
                }
                match (
                    section.options.iter_mut().find(|o| &o.name == name),
                    is_list,
                ) {
                    (None, false) => section.options.push(UciOption {
                        name: name.clone(),
                        value: UciValue::Single(value.clone()),
                        line,
                    }),
                    (None, true) => section.options.push(UciOption {
                        name: name.clone(),
                        value: UciValue::List(vec![value.clone()]),
                        line,
                    }),
                    (Some(existing), true) if matches!(existing.value, UciValue::List(_)) => {
                        if let UciValue::List(items) = &mut existing.value {
                            items.push(value.clone());
                        }
                    }
                    (Some(existing), _) => {
                        return Err(at_line(
                            line,
                            format!(
                                "'{name}' is already set on line {} of this section",
                                existing.line
                            ),
                        ));
                    }
                }
            }
            other => {
                return Err(at_line(
                    line,
                    format!("unknown keyword '{other}'; expected config, option, list or package"),
                ));
            }
        }
    }
    Ok(file)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

/// One TOML value for a UCI option; `None` for an empty option (UCI's way of
/// leaving a key unset).
fn toml_value(section: &Section, option: &UciOption) -> Result<Option<toml::Value>, UciError> {
    let kind = kind_of(&section.kind, &option.name);
    let bad = |problem: String| at_option(section, Some(option), problem);
    Ok(match (&option.value, kind) {
        (UciValue::Single(s), _) if s.is_empty() => None,
        (UciValue::Single(s), Kind::Str) => Some(toml::Value::String(s.clone())),
        (UciValue::Single(s), Kind::Int) => match s.trim().parse::<i64>() {
            Ok(n) => Some(toml::Value::Integer(n)),
            Err(_) => return Err(bad(format!("expected a whole number, got '{s}'"))),
        },
        (UciValue::Single(s), Kind::Bool) => match parse_bool(s) {
            Some(b) => Some(toml::Value::Boolean(b)),
            None => return Err(bad(format!("expected 0 or 1, got '{s}'"))),
        },
        // `option walled_garden '10.0.0.1 10.0.0.2'`: the OpenWrt way of
        // writing a short list on one line.
        (UciValue::Single(s), Kind::List) => Some(toml::Value::Array(
            s.split_whitespace()
                .map(|item| toml::Value::String(item.to_string()))
                .collect(),
        )),
        (UciValue::List(items), Kind::List) => Some(toml::Value::Array(
            items
                .iter()
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.clone()))
                .collect(),
        )),
        (UciValue::List(_), _) => {
            return Err(bad(
                "takes one value: write it as `option`, not `list`".into()
            ));
        }
    })
}

/// Translates parsed UCI into TOML text (not yet validated).
pub fn translate(file: &UciFile) -> Result<String, UciError> {
    if let Some(package) = &file.package
        && package != "storegate"
    {
        return Err(at_line(
            1,
            format!("this is the '{package}' package; expected storegate"),
        ));
    }
    for (i, section) in file.sections.iter().enumerate() {
        if section.kind != SERVICE_SECTION && !SECTIONS.contains(&section.kind.as_str()) {
            return Err(at_option(
                section,
                None,
                format!(
                    "unknown section type '{}'; expected one of {}, {SERVICE_SECTION}",
                    section.kind,
                    SECTIONS.join(", ")
                ),
            ));
        }
        if let Some(first) = file.sections[..i].iter().find(|s| s.kind == section.kind) {
            return Err(at_option(
                section,
                None,
                format!(
                    "config {} appears twice (first on line {}); merge them",
                    section.kind, first.line
                ),
            ));
        }
    }
    for required in REQUIRED {
        if !file.sections.iter().any(|s| s.kind == *required) {
            return Err(UciError {
                place: "file".into(),
                problem: format!("missing section: config {required} '{required}'"),
            });
        }
    }

    let mut out = String::from(
        "# Generated by `storegate uci-to-toml` from the UCI config; edit that instead.\n",
    );
    for name in SECTIONS {
        let Some(section) = file.sections.iter().find(|s| s.kind == *name) else {
            continue;
        };
        out.push_str(&format!("\n[{}]\n", toml_table(name)));
        for option in &section.options {
            if let Some(value) = toml_value(section, option)? {
                // Option names are [A-Za-z0-9_]: bare TOML keys. Values are
                // written by the toml crate, so quoting is always right.
                out.push_str(&format!("{} = {value}\n", option.name));
            }
        }
    }
    Ok(out)
}

/// Parses, translates and validates: the TOML for `storegate run`, or an
/// error naming the UCI section and option.
pub fn to_toml(text: &str) -> Result<String, UciError> {
    let file = parse(text)?;
    let toml_text = translate(&file)?;
    if let Err(e) = Config::parse(&toml_text) {
        return Err(locate(&file, &e.key, &e.problem));
    }
    Ok(toml_text)
}

/// Maps a TOML key (`portal.idle_timeout`) back to its UCI section and option.
fn locate(file: &UciFile, key: &str, problem: &str) -> UciError {
    let problem = strip_toml_line(problem);
    let nested = NESTED.iter().find_map(|(uci, table)| {
        let rest = key.strip_prefix(table)?;
        match rest.strip_prefix('.') {
            Some(o) => Some((*uci, Some(o))),
            None => rest.is_empty().then_some((*uci, None)),
        }
    });
    let (section_name, option_name) = match (nested, key.split_once('.')) {
        (Some(found), _) => found,
        (None, Some((s, o))) => (s, Some(o)),
        (None, None) => (key, None),
    };
    match file.sections.iter().find(|s| s.kind == section_name) {
        Some(section) => {
            let option = option_name.and_then(|o| section.option(o));
            let mut error = at_option(section, option, problem);
            if option.is_none()
                && let Some(o) = option_name
            {
                error.place.push_str(&format!(", option '{o}'"));
            }
            error
        }
        None => UciError {
            place: format!("config {section_name}"),
            problem,
        },
    }
}

/// Drops " (line N)" that refers to the generated TOML, not the UCI file.
fn strip_toml_line(problem: &str) -> String {
    if let Some(start) = problem.find(" (line ")
        && let Some(len) = problem[start..].find(')')
    {
        let rest = &problem[start + 7..start + len];
        if rest.chars().all(|c| c.is_ascii_digit()) {
            return format!("{}{}", &problem[..start], &problem[start + len + 1..]);
        }
    }
    problem.to_string()
}

#[cfg(test)]
mod tests;
