//! Man pages and shell completions for every oomd binary, made from its own clap definition,
//! so that they never drift from `--help`.
//!
//! Each binary calls [`generate_if_asked`] first thing in `main`: when its arguments are
//! `--generate <what>`, it writes that to stdout and exits, before its own parsing (so a
//! binary with a required subcommand still answers). `scripts/gen-docs.sh` runs every binary
//! so and writes `build/share/man/man1/*.1` and `build/share/completions/`.
//!
//! ```text
//! oomctl --generate man      > oomctl.1
//! oomctl --generate bash     > oomctl.bash
//! oomctl --generate zsh      > _oomctl
//! oomctl --generate fish     > oomctl.fish
//! ```
//!
//! What it is not: documentation beyond what the clap definitions say; the binaries' `--help`
//! text is the source.

use std::io::Write;

/// What `--generate` can write.
pub const KINDS: [&str; 4] = ["man", "bash", "zsh", "fish"];

/// If the process was run as `<bin> --generate <what>`, writes it to stdout and exits (0, or
/// 2 for an unknown `<what>` or a failed write); otherwise returns and the binary goes on.
pub fn generate_if_asked<A: clap::CommandFactory>() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, what] = args.as_slice() else {
        return;
    };
    if flag != "--generate" {
        return;
    }
    let mut out = Vec::new();
    let code = match generate(A::command(), what, &mut out) {
        Ok(()) => match std::io::stdout().write_all(&out) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("--generate {what}: {e}");
                2
            }
        },
        Err(e) => {
            eprintln!("{e}");
            2
        }
    };
    std::process::exit(code);
}

/// Writes the man page (`man`) or the completion script (`bash`, `zsh`, `fish`) of `cmd`.
pub fn generate(mut cmd: clap::Command, what: &str, out: &mut Vec<u8>) -> Result<(), String> {
    use clap_complete::Shell;
    let name = cmd.get_name().to_owned();
    let shell = match what {
        "man" => {
            return clap_mangen::Man::new(cmd)
                .render(out)
                .map_err(|e| format!("--generate man: {e}"));
        }
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => {
            return Err(format!(
                "--generate {other}: expected one of {}",
                KINDS.join(", ")
            ))
        }
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> clap::Command {
        clap::Command::new("demo")
            .version("1.0")
            .about("A demo")
            .subcommand(clap::Command::new("status").about("Show the status"))
            .arg(clap::Arg::new("socket").long("socket"))
    }

    #[test]
    fn each_kind_names_the_binary_its_subcommands_and_options() {
        for what in KINDS {
            let mut out = Vec::new();
            generate(demo(), what, &mut out).expect(what);
            let text = String::from_utf8(out).expect("utf-8");
            assert!(text.contains("demo"), "{what}: {text}");
            assert!(text.contains("status"), "{what}: {text}");
            assert!(text.contains("socket"), "{what}: {text}");
        }
        let mut man = Vec::new();
        generate(demo(), "man", &mut man).expect("man");
        let man = String::from_utf8(man).expect("utf-8");
        assert!(man.starts_with(".ie") || man.contains(".TH demo"), "{man}");
    }

    #[test]
    fn an_unknown_kind_is_refused_with_the_choices() {
        let mut out = Vec::new();
        let e = generate(demo(), "pdf", &mut out).expect_err("pdf");
        assert!(e.contains("man, bash, zsh, fish"), "{e}");
        assert!(out.is_empty());
    }
}
