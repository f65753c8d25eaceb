//! The man pages, from the clap definition (so they cannot drift from the
//! flags): `atrest(1)`, and one page per command (`atrest-cp(1)`, ...), as
//! git's, since atrest(1) names them. A command's closing text (exit
//! statuses, examples) is set as written, under its own heading: filled as
//! prose, its indented lines ran together.

use std::io::{self, Write};
use std::path::Path;

/// The page of `command` (`atrest`, or a subcommand of a built tree).
fn render(command: &clap::Command, out: &mut dyn Write) -> io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }
    if let Some(text) = command.get_after_help() {
        closing_text(&text.to_string(), out)?;
    }
    match command.get_version() {
        Some(_) => man.render_version_section(out),
        None => Ok(()),
    }
}

/// The commands that have pages: `atrest` first, then each command.
fn pages() -> Vec<clap::Command> {
    let mut root = crate::cli::command().disable_help_subcommand(true);
    root.build();
    let mut pages = vec![root.clone()];
    pages.extend(root.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    pages
}

/// atrest(1).
pub fn render_main(out: &mut dyn Write) -> io::Result<()> {
    render(&pages()[0], out)
}

/// Writes `atrest.1` and a page for each command into `dir`.
pub fn write_all(dir: &Path) -> io::Result<()> {
    for page in pages() {
        let name = clap_mangen::Man::new(page.clone()).get_filename();
        let mut text = Vec::new();
        render(&page, &mut text)?;
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// `Heading:` then lines, as a section of lines kept as they are.
fn closing_text(text: &str, out: &mut dyn Write) -> io::Result<()> {
    let (heading, body) = match text.split_once('\n') {
        Some((first, rest)) if first.ends_with(':') => (first.trim_end_matches(':'), rest),
        _ => ("NOTES", text),
    };
    writeln!(out, ".SH \"{}\"", heading.to_uppercase())?;
    writeln!(out, ".nf")?;
    for line in body.lines() {
        writeln!(out, "{}", roff_line(line))?;
    }
    writeln!(out, ".fi")
}

/// `line` as roff text: backslashes and hyphens escaped (`\-` is a minus
/// sign, so flags copy as typed), and a leading `.` or `'` not taken for a
/// request.
fn roff_line(line: &str) -> String {
    let escaped = line.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn closing_text_is_set_line_for_line_under_its_heading() {
        let mut out = Vec::new();
        super::closing_text("Exit status:\n  0  ok\n.x --y \\z", &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ".SH \"EXIT STATUS\"\n.nf\n  0  ok\n\\&.x \\-\\-y \\ez\n.fi\n"
        );
    }
}
