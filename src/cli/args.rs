//! The command line's words read against a table of commands (`table`
//! declares storegate's), and the help and errors that table gives.
//!
//! A parser of our own rather than a general one: storegate has a handful
//! of commands and options, and clap with its generated code took 131 KB
//! of the aarch64 router binary. It reads what the contract in
//! DESIGN.md and the tests use, with the usual conventions:
//! `--name VALUE`, `--name=VALUE`, `-n VALUE`, `-nVALUE`, `-n=VALUE`,
//! flags `--name` and `-n`, positionals in order, `--` before words that
//! are positionals even if they start with `-`. `-h`/`--help` and
//! `help [COMMAND]...` print help on stdout (exit 0), `-V`/`--version` at
//! the top the version; a command that needs a subcommand and has none
//! prints its help on stderr (exit 2). Any other mistake is an `error:`
//! line, the command's usage and a hint on stderr, exit 2.

use std::ffi::{OsStr, OsString};
use std::fmt::{Display, Write as _};
use std::io::Write as _;
use std::process::ExitCode;
use std::str::FromStr;

/// An option: `--long`, maybe `-s`, a flag or one value.
#[derive(Debug)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's name as help shows it (`<CONFIG>`); `None`: a flag.
    pub value: Option<&'static str>,
    /// Refused when missing (only `run --config`).
    pub required: bool,
    /// Taken when the option is not given; shown in help.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Opt {
    /// A flag: `--long`.
    pub const fn flag(long: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: None,
            required: false,
            default: None,
            help,
        }
    }

    /// An option with a value: `--long <VALUE>`.
    pub const fn value(long: &'static str, value: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value: Some(value),
            required: false,
            default: None,
            help,
        }
    }

    pub const fn short(self, short: char) -> Opt {
        Opt {
            short: Some(short),
            ..self
        }
    }

    pub const fn required(self) -> Opt {
        Opt {
            required: true,
            ..self
        }
    }

    pub const fn default(self, default: &'static str) -> Opt {
        Opt {
            default: Some(default),
            ..self
        }
    }

    /// `--config <CONFIG>`, as errors name it.
    fn display(&self) -> String {
        match self.value {
            Some(v) => format!("--{} <{v}>", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// A command: its options, its positionals (all required, in order) or
/// its subcommands.
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    /// One line for help (no final full stop, as listed).
    pub about: &'static str,
    /// Left out of the help's list of commands.
    pub hidden: bool,
    pub opts: &'static [Opt],
    /// Positionals: (name, help).
    pub args: &'static [(&'static str, &'static str)],
    pub subs: &'static [Cmd],
}

impl Cmd {
    pub const fn new(name: &'static str, about: &'static str) -> Cmd {
        Cmd {
            name,
            about,
            hidden: false,
            opts: &[],
            args: &[],
            subs: &[],
        }
    }
}

/// What one command's words said. Options by their long name.
#[derive(Debug)]
pub struct Matches {
    pub name: &'static str,
    cmd: &'static Cmd,
    given: Vec<(&'static str, OsString)>,
    positionals: Vec<OsString>,
    pub sub: Option<Box<Matches>>,
}

impl Matches {
    pub fn flag(&self, long: &str) -> bool {
        self.given.iter().any(|(name, _)| *name == long)
    }

    /// The option's value as given, else its default.
    pub fn os(&self, long: &str) -> Option<&OsStr> {
        self.given
            .iter()
            .find(|(name, _)| *name == long)
            .map(|(_, v)| v.as_os_str())
            .or_else(|| self.opt(long).and_then(|o| o.default).map(OsStr::new))
    }

    /// The option's value (or default) read as `T`.
    pub fn value<T: FromStr>(&self, long: &str) -> Result<Option<T>, Stop>
    where
        T::Err: Display,
    {
        let Some(raw) = self.os(long) else {
            return Ok(None);
        };
        let shown = self
            .opt(long)
            .map_or_else(|| long.to_string(), Opt::display);
        let text = raw.to_str().ok_or_else(invalid_utf8)?;
        text.parse().map(Some).map_err(|e| {
            Stop::error(format!(
                "error: invalid value '{text}' for '{shown}': {e}\n\n{MORE}"
            ))
        })
    }

    /// Positional `i` (present: parsing checked that all are).
    pub fn arg(&self, i: usize) -> &OsStr {
        &self.positionals[i]
    }

    /// Positional `i` as text.
    pub fn arg_str(&self, i: usize) -> Result<String, Stop> {
        self.arg(i)
            .to_str()
            .map(str::to_string)
            .ok_or_else(invalid_utf8)
    }

    fn opt(&self, long: &str) -> Option<&'static Opt> {
        self.cmd.opts.iter().find(|o| o.long == long)
    }
}

/// Where reading the command line stopped before a command ran: help or
/// the version (exit 0, stdout), or a mistake (exit 2, stderr).
#[derive(Debug)]
pub struct Stop {
    pub text: String,
    pub code: u8,
}

impl Stop {
    fn error(text: String) -> Stop {
        Stop { text, code: 2 }
    }

    /// Prints the text where it belongs and gives the exit code. A
    /// stdout that cannot be written (a closed pipe) is not an error here.
    pub fn exit(self) -> ExitCode {
        if self.code == 0 {
            let _ = std::io::stdout().write_all(self.text.as_bytes());
        } else {
            let _ = std::io::stderr().write_all(self.text.as_bytes());
        }
        ExitCode::from(self.code)
    }
}

const MORE: &str = "For more information, try '--help'.\n";

fn invalid_utf8() -> Stop {
    Stop::error(format!(
        "error: invalid UTF-8 was detected in one or more arguments\n\n{MORE}"
    ))
}

/// Reads `words` (without the program's name) as `root`'s command line.
/// `version` is what `--version` prints.
pub fn parse(
    root: &'static Cmd,
    version: &str,
    words: impl IntoIterator<Item = OsString>,
) -> Result<Matches, Stop> {
    let mut words = words.into_iter();
    let path = root.name.to_string();
    read(root, &path, Some(version), &mut words)
}

fn read(
    cmd: &'static Cmd,
    path: &str,
    version: Option<&str>,
    words: &mut dyn Iterator<Item = OsString>,
) -> Result<Matches, Stop> {
    let mut m = Matches {
        name: cmd.name,
        cmd,
        given: Vec::new(),
        positionals: Vec::new(),
        sub: None,
    };
    let mut words = words.peekable();
    let mut options_ended = false;
    while let Some(word) = words.next() {
        let bytes = word.as_encoded_bytes();
        if options_ended || bytes == b"-" || !bytes.starts_with(b"-") {
            if !cmd.subs.is_empty() {
                let name = word.to_str().unwrap_or_default();
                if name == "help" {
                    return Err(help_of(cmd, path, &mut words));
                }
                let Some(sub) = cmd.subs.iter().find(|s| s.name == name) else {
                    return Err(unrecognized(&word, cmd, path));
                };
                let sub_path = format!("{path} {}", sub.name);
                m.sub = Some(Box::new(read(sub, &sub_path, None, &mut words)?));
                break;
            }
            if m.positionals.len() == cmd.args.len() {
                return Err(unexpected(&word, cmd, path));
            }
            m.positionals.push(word);
            continue;
        }
        if bytes == b"--" {
            options_ended = true;
            continue;
        }
        // `--name[=VALUE]` or `-n[VALUE]` / `-n=VALUE`.
        let (opt, inline) = if let Some(rest) = bytes.strip_prefix(b"--") {
            let (name, inline) = match rest.iter().position(|&b| b == b'=') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            match name {
                b"help" => return Err(help(cmd, path)),
                b"version" if version.is_some() => return Err(version_stop(cmd, version)),
                _ => {}
            }
            let Some(opt) = cmd.opts.iter().find(|o| o.long.as_bytes() == name) else {
                return Err(unexpected(&word, cmd, path));
            };
            (opt, inline)
        } else {
            let short = bytes[1];
            let rest = &bytes[2..];
            let inline = match rest {
                [] => None,
                [b'=', value @ ..] => Some(value),
                value => Some(value),
            };
            match (short, inline) {
                (b'h', None) => return Err(help(cmd, path)),
                (b'V', None) if version.is_some() => return Err(version_stop(cmd, version)),
                _ => {}
            }
            let Some(opt) = cmd.opts.iter().find(|o| o.short == Some(char::from(short))) else {
                return Err(unexpected(&word, cmd, path));
            };
            (opt, inline)
        };
        if m.flag(opt.long) {
            return Err(usage_error(
                &format!(
                    "the argument '{}' cannot be used multiple times",
                    opt.display()
                ),
                cmd,
                path,
            ));
        }
        let value = match (opt.value, inline) {
            (None, None) => OsString::new(),
            (None, Some(extra)) => {
                return Err(usage_error(
                    &format!(
                        "unexpected value '{}' for '{}' found; no more were expected",
                        String::from_utf8_lossy(extra),
                        opt.display()
                    ),
                    cmd,
                    path,
                ));
            }
            (Some(_), Some(value)) => os_string(value),
            (Some(_), None) => match words.next_if(|w| {
                let b = w.as_encoded_bytes();
                b == b"-" || !b.starts_with(b"-")
            }) {
                Some(value) => value,
                None => {
                    return Err(usage_error(
                        &format!(
                            "a value is required for '{}' but none was supplied",
                            opt.display()
                        ),
                        cmd,
                        path,
                    ));
                }
            },
        };
        m.given.push((opt.long, value));
    }
    let mut missing: Vec<String> = cmd
        .opts
        .iter()
        .filter(|o| o.required && !m.flag(o.long))
        .map(Opt::display)
        .collect();
    missing.extend(
        cmd.args[m.positionals.len()..]
            .iter()
            .map(|(name, _)| format!("<{name}>")),
    );
    if !missing.is_empty() {
        let mut msg = String::from("the following required arguments were not provided:");
        for name in missing {
            msg.push_str("\n  ");
            msg.push_str(&name);
        }
        return Err(usage_error(&msg, cmd, path));
    }
    if !cmd.subs.is_empty() && m.sub.is_none() {
        return Err(Stop::error(help_text(cmd, path)));
    }
    Ok(m)
}

/// Bytes cut from an argument at ASCII boundaries (after `=` or a short
/// option's letter), which keeps them a valid encoding.
fn os_string(bytes: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        OsStr::from_bytes(bytes).to_os_string()
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

fn version_stop(cmd: &Cmd, version: Option<&str>) -> Stop {
    Stop {
        text: format!("{} {}\n", cmd.name, version.unwrap_or_default()),
        code: 0,
    }
}

fn help(cmd: &Cmd, path: &str) -> Stop {
    Stop {
        text: help_text(cmd, path),
        code: 0,
    }
}

/// `help [COMMAND]...`: the help of the command those words name.
fn help_of(cmd: &'static Cmd, path: &str, words: &mut dyn Iterator<Item = OsString>) -> Stop {
    let mut cmd = cmd;
    let mut path = path.to_string();
    for word in words {
        let name = word.to_str().unwrap_or_default();
        match cmd.subs.iter().find(|s| s.name == name) {
            Some(sub) => {
                path = format!("{path} {}", sub.name);
                cmd = sub;
            }
            None => return unrecognized(&word, cmd, &path),
        }
    }
    help(cmd, &path)
}

fn unexpected(word: &OsStr, cmd: &Cmd, path: &str) -> Stop {
    usage_error(
        &format!("unexpected argument '{}' found", word.to_string_lossy()),
        cmd,
        path,
    )
}

fn unrecognized(word: &OsStr, cmd: &Cmd, path: &str) -> Stop {
    usage_error(
        &format!("unrecognized subcommand '{}'", word.to_string_lossy()),
        cmd,
        path,
    )
}

fn usage_error(msg: &str, cmd: &Cmd, path: &str) -> Stop {
    Stop::error(format!(
        "error: {msg}\n\nUsage: {}\n\n{MORE}",
        usage(cmd, path)
    ))
}

/// `storegate ctl [OPTIONS] <COMMAND>`: optional options as `[OPTIONS]`,
/// required ones and positionals by name.
fn usage(cmd: &Cmd, path: &str) -> String {
    let mut s = path.to_string();
    if cmd.opts.iter().any(|o| !o.required) {
        s.push_str(" [OPTIONS]");
    }
    for o in cmd.opts.iter().filter(|o| o.required) {
        s.push(' ');
        s.push_str(&o.display());
    }
    for (name, _) in cmd.args {
        let _ = write!(s, " <{name}>");
    }
    if !cmd.subs.is_empty() {
        s.push_str(" <COMMAND>");
    }
    s
}

fn help_text(cmd: &Cmd, path: &str) -> String {
    // Only the top command's path is its bare name; only it has -V.
    let top = !path.contains(' ');
    let mut out = format!("{}\n\nUsage: {}\n", cmd.about, usage(cmd, path));
    if !cmd.subs.is_empty() {
        let mut rows: Vec<(String, String)> = cmd
            .subs
            .iter()
            .filter(|s| !s.hidden)
            .map(|s| (s.name.to_string(), s.about.to_string()))
            .collect();
        rows.push((
            "help".into(),
            "Print this message or the help of the given subcommand(s)".into(),
        ));
        section(&mut out, "Commands", &rows);
    }
    if !cmd.args.is_empty() {
        let rows: Vec<(String, String)> = cmd
            .args
            .iter()
            .map(|(name, help)| (format!("<{name}>"), help.to_string()))
            .collect();
        section(&mut out, "Arguments", &rows);
    }
    let mut rows: Vec<(String, String)> = cmd
        .opts
        .iter()
        .map(|o| {
            let left = match o.short {
                Some(c) => format!("-{c}, {}", o.display()),
                None => format!("    {}", o.display()),
            };
            let help = match o.default {
                Some(d) => format!("{} [default: {d}]", o.help),
                None => o.help.to_string(),
            };
            (left, help)
        })
        .collect();
    rows.push(("-h, --help".into(), "Print help".into()));
    if top {
        rows.push(("-V, --version".into(), "Print version".into()));
    }
    section(&mut out, "Options", &rows);
    out
}

/// A titled two-column section of help, the second column aligned.
fn section(out: &mut String, title: &str, rows: &[(String, String)]) {
    let width = rows.iter().map(|(left, _)| left.len()).max().unwrap_or(0);
    let _ = write!(out, "\n{title}:\n");
    for (left, text) in rows {
        let line = format!("  {left:<width$}  {text}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}
