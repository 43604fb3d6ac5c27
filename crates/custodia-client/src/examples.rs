//! An example for every command's `--help`, from one table per program part, and the
//! check that each example parses with the command it documents.

use clap::Command;

/// A request, case, change, hold or group id as the commands print them.
macro_rules! id {
    () => {
        "01a22ca2-36b6-7601-a1f1-d53173b84e91"
    };
}

/// The client's examples: (command path, arguments after the program's name).
pub const CLIENT: &[(&str, &str)] = &[
    (
        "chat register",
        "chat --profile alice register alice --date-of-birth 1990-01-01",
    ),
    ("chat login", "chat --profile alice login alice"),
    ("chat logout", "chat --profile alice logout"),
    ("chat close-account", "chat --profile alice close-account"),
    (
        "chat export",
        "chat --profile alice export alice-export.zip",
    ),
    ("chat send", r#"chat --profile alice send bob "hello Bob""#),
    ("chat listen", "chat --profile bob listen"),
    (
        "chat history",
        "chat --profile alice history bob --limit 20",
    ),
    (
        "chat report",
        r#"chat --profile bob report alice 3 4 --category harassment --comment "unwanted""#,
    ),
    ("chat conversations", "chat --profile alice conversations"),
    ("chat notices", "chat --profile alice notices"),
    (
        "chat access-history",
        "chat --profile alice access-history --verify --log-url https://127.0.0.1:8444",
    ),
    (
        "chat group create",
        r#"chat --profile alice group create "book club" bob carol"#,
    ),
    (
        "chat group add",
        concat!("chat --profile alice group add ", id!(), " dave"),
    ),
    (
        "chat group remove",
        concat!("chat --profile alice group remove ", id!(), " dave"),
    ),
    ("staff login", "staff --profile mia login mia"),
    ("staff logout", "staff --profile mia logout"),
    ("staff whoami", "staff --profile mia whoami"),
    ("staff accounts", "staff --profile admin accounts"),
    (
        "staff enrol",
        "staff --profile mia enrol mia --code cse_TDnVzzKQpMNpK1L2tn8uXvKKLWFcYBfyvqVX8texQ_k",
    ),
    ("staff password", "staff --profile mia password"),
    ("staff totp", "staff --profile mia totp"),
    (
        "staff create-account",
        "staff --profile admin create-account mia --role moderator",
    ),
    ("staff changes", "staff --profile auditor changes"),
    (
        "staff approve-change",
        concat!("staff --profile auditor approve-change ", id!()),
    ),
    (
        "staff deny-change",
        concat!("staff --profile auditor deny-change ", id!()),
    ),
    (
        "staff set-role",
        concat!(
            "staff --profile admin set-role ",
            id!(),
            " --role senior_moderator"
        ),
    ),
    ("staff cases", "staff --profile mia cases"),
    ("staff case", concat!("staff --profile mia case ", id!())),
    (
        "staff request",
        concat!(
            "staff --profile mia request --case ",
            id!(),
            r#" --reason report_review --justification "reviewing the reported harassment""#
        ),
    ),
    ("staff show", concat!("staff --profile mia show ", id!())),
    (
        "staff approve",
        concat!(
            "staff --profile sam approve ",
            id!(),
            r#" --justification "credible report""#
        ),
    ),
    (
        "staff deny",
        concat!(
            "staff --profile sam deny ",
            id!(),
            r#" --justification "the report does not need it""#
        ),
    ),
    ("staff read", concat!("staff --profile mia read ", id!())),
    (
        "staff read-file",
        concat!(
            "staff --profile lex read-file ",
            id!(),
            " 01a22ca2-3677-7fb4-94a5-c040c8491765 --out evidence.jpg"
        ),
    ),
    (
        "staff revoke",
        concat!("staff --profile sam revoke ", id!()),
    ),
    (
        "staff complete",
        concat!("staff --profile mia complete ", id!()),
    ),
    (
        "staff extend-order",
        concat!(
            "staff --profile lex extend-order ",
            id!(),
            " --until 2027-12-31 --document-sha256 ",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ),
    ),
    (
        "staff lift-order",
        concat!(
            "staff --profile lex lift-order ",
            id!(),
            " --document-sha256 ",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ),
    ),
    (
        "staff legal intake",
        concat!(
            r#"staff --profile lex legal intake --agency "Metropolitan Police" --country GB "#,
            r#"--officer "DC Jane Smith" --badge MPS-4411 --email jane.smith@met.police.uk "#,
            "--process search_warrant --target alice --data content ",
            "--from 2026-01-01 --to 2026-12-31 --document warrant.pdf"
        ),
    ),
    ("staff legal list", "staff --profile lex legal list"),
    (
        "staff legal show",
        concat!("staff --profile lex legal show ", id!()),
    ),
    (
        "staff legal review",
        concat!("staff --profile lex legal review ", id!(), " --full"),
    ),
    (
        "staff legal hold",
        concat!("staff --profile lex legal hold ", id!()),
    ),
    (
        "staff legal holds",
        concat!("staff --profile lex legal holds ", id!()),
    ),
    (
        "staff legal extend",
        concat!("staff --profile lex legal extend ", id!()),
    ),
    (
        "staff legal release",
        concat!("staff --profile lex legal release ", id!()),
    ),
    (
        "staff legal produce",
        concat!("staff --profile lex legal produce ", id!()),
    ),
    (
        "staff legal package",
        concat!(
            "staff --profile lex legal package ",
            id!(),
            " --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            " --out LR.tar.age"
        ),
    ),
    (
        "staff legal document",
        concat!(
            "staff --profile lex legal document ",
            id!(),
            " 1 --out warrant.pdf"
        ),
    ),
    (
        "staff report",
        "staff --profile auditor report --from 2026-01-01 --to 2026-12-31 --html",
    ),
];

/// Adds its example to every command `examples` names (`Example:` after the options).
pub fn with_examples(cmd: Command, examples: &[(&str, &str)]) -> Command {
    let program = cmd.get_name().to_owned();
    add(cmd, "", &program, examples)
}

fn add(mut cmd: Command, path: &str, program: &str, examples: &[(&str, &str)]) -> Command {
    if let Some((_, e)) = examples.iter().find(|(p, _)| *p == path) {
        cmd = cmd.after_help(format!("Example:\n  {program} {e}"));
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for name in names {
        let sub = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |s| add(s, &sub, program, examples));
    }
    cmd
}

/// What is wrong with the examples of `cmd`'s commands: a command without one, an
/// example for no command, an example that does not parse as the command it documents.
pub fn problems(cmd: &Command, examples: &[(&str, &str)]) -> Vec<String> {
    let mut leaves = Vec::new();
    collect(cmd, "", &mut leaves);
    let mut out = Vec::new();
    for leaf in &leaves {
        if !examples.iter().any(|(p, _)| p == leaf) {
            out.push(format!("`{leaf}` has no example"));
        }
    }
    for (path, example) in examples {
        if !leaves.contains(&path.to_string()) {
            out.push(format!("an example for `{path}`, which is no command"));
            continue;
        }
        let mut args = vec![cmd.get_name().to_owned()];
        args.extend(split(example));
        match cmd.clone().try_get_matches_from(&args) {
            Err(e) => out.push(format!("`{example}` does not parse: {e}")),
            Ok(m) => {
                let mut m = &m;
                let mut got = Vec::new();
                while let Some((name, sub)) = m.subcommand() {
                    got.push(name);
                    m = sub;
                }
                if got.join(" ") != *path {
                    out.push(format!(
                        "`{example}` runs `{}`, not `{path}`",
                        got.join(" ")
                    ));
                }
            }
        }
    }
    out
}

fn collect(cmd: &Command, path: &str, leaves: &mut Vec<String>) {
    let subs: Vec<&Command> = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    if subs.is_empty() && !path.is_empty() {
        leaves.push(path.to_owned());
    }
    for s in subs {
        let sub = if path.is_empty() {
            s.get_name().to_owned()
        } else {
            format!("{path} {}", s.get_name())
        };
        collect(s, &sub, leaves);
    }
}

/// Words as a shell splits them (quotes grouped; no escapes in the examples).
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (Some(q), _) if c == q => quote = None,
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (_, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_a_shell_splits_them() {
        assert_eq!(
            split(r#"send bob "hello Bob" --x '' y"#),
            ["send", "bob", "hello Bob", "--x", "", "y"]
        );
    }

    #[test]
    fn a_wrong_example_is_found() {
        let cmd = Command::new("p").subcommand(
            Command::new("send")
                .arg(clap::Arg::new("to").required(true))
                .subcommand_negates_reqs(true),
        );
        assert!(problems(&cmd, &[("send", "send bob")]).is_empty());
        assert_eq!(
            problems(&cmd, &[("send", "send")]).len(),
            1,
            "a missing argument"
        );
        assert_eq!(problems(&cmd, &[]), ["`send` has no example"]);
    }
}
