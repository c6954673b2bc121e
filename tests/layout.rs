//! The crate's layout, as the "Layers" section of the crate docs draws it: a module imports
//! only from layers below its own, and no file of `src/` grows past [`MAX_CODE_LINES`].
//!
//! The checks read the files of `src/` as text: every `crate::<module>` path in code (not in
//! comments, not in a `#[cfg(test)]` item) must name a module of a lower layer than the
//! file's own top-level module, or that module itself.

use std::{fs, path::Path, path::PathBuf};

/// The layers of the top-level modules, lowest first, as the crate docs draw them.
#[rustfmt::skip]
const LAYERS: &[(&str, &[&str])] = &[
    ("vocabulary",       &["token", "escape", "body", "error", "origin", "macros"]),
    ("codecs, records",  &["future", "urlencoded", "deadline", "jose", "events"]),
    ("parsing, storage", &["form", "jsonp", "store", "registry"]),
    ("CORS",             &["cors"]),
    ("client auth, DPoP", &["client_auth", "dpop"]),
    ("pipeline, guards", &["endpoint", "guard", "trace"]),
    ("JWT",              &["jwt"]),
    ("services",         &["revoke", "introspect", "metadata", "owner", "admin", "set", "serve"]),
    ("SOAP",             &["soap"]),
];

/// Items of the crate root that modules may name as `crate::<Item>`, with the module whose
/// layer they belong to.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("BoxError", "body"),
    ("BuildError", "endpoint"),
    ("Endpoint", "endpoint"),
    ("RevocationEndpoint", "revoke"),
    ("RevocationEndpointBuilder", "revoke"),
];

/// At most this many code lines (non-blank lines that are not `//` comments) in a file.
const MAX_CODE_LINES: usize = 500;

#[test]
fn modules_import_only_from_lower_layers() {
    let mut failures = Vec::new();
    for (file, text) in source_files() {
        let module = top_level_module(&file);
        if module == "lib" {
            continue; // The crate root re-exports from every layer.
        }
        let Some(own) = layer_of(&module) else {
            failures.push(format!(
                "{}: module `{module}` is in no layer of LAYERS",
                file.display()
            ));
            continue;
        };
        let code = code_lines(&text, true);
        for (line, name) in crate_paths(&code) {
            let target = match ROOT_ITEMS.iter().find(|(item, _)| *item == name) {
                Some((_, home)) => home.to_string(),
                None => name.clone(),
            };
            if target == module {
                continue;
            }
            let at = format!("{}:{line}: `crate::{name}`", file.display());
            match layer_of(&target) {
                None => failures.push(format!("{at}: `{target}` is in no layer of LAYERS")),
                Some(theirs) if theirs >= own => failures.push(format!(
                    "{at}: `{module}` is in layer {own} ({}), `{target}` in layer {theirs} ({}), \
                     not below it",
                    LAYERS[own].0, LAYERS[theirs].0
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        failures.is_empty(),
        "imports against the layers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn no_file_has_more_than_500_code_lines() {
    let mut failures = Vec::new();
    for (file, text) in source_files() {
        let count = code_lines(&text, false)
            .iter()
            .filter(|(_, l)| !l.trim().is_empty())
            .count();
        if count > MAX_CODE_LINES {
            failures.push(format!("{}: {count} code lines", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "files over {MAX_CODE_LINES} code lines; split them by concern:\n{}",
        failures.join("\n")
    );
}

/// The layer (index into [`LAYERS`]) of a top-level module.
fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

/// Every `.rs` file under `src/`, sorted, as its path in the package (`src/form.rs`) and
/// its text.
fn source_files() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    let text = |file: &PathBuf| fs::read_to_string(file).unwrap();
    let path = |file: &PathBuf| file.strip_prefix(root).unwrap().to_owned();
    files.iter().map(|file| (path(file), text(file))).collect()
}

/// `src/cors/check.rs` and `src/cors/mod.rs` are in `cors`, `src/form.rs` in `form`.
fn top_level_module(file: &Path) -> String {
    let first = file
        .strip_prefix("src")
        .unwrap()
        .components()
        .next()
        .unwrap();
    let name = first.as_os_str().to_str().unwrap();
    name.strip_suffix(".rs").unwrap_or(name).to_owned()
}

/// The numbered lines of `text` without comments; without `#[cfg(test)]` items too when
/// `skip_tests` is set. A `#[cfg(test)]` item ends on its first line if that ends in `;` or
/// `}`, else at the `}` of the attribute's own indentation (rustfmt's layout).
fn code_lines(text: &str, skip_tests: bool) -> Vec<(usize, String)> {
    let mut code = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if skip_tests && trimmed == "#[cfg(test)]" {
            let close = format!("{}}}", &line[..line.len() - trimmed.len()]);
            let mut item = lines.by_ref().map(|(_, l)| l.trim_end());
            let first = item.find(|l| !l.trim_start().starts_with("#["));
            if first.is_some_and(|l| !l.ends_with(';') && !l.ends_with('}')) {
                let _ = item.find(|l| *l == close);
            }
            continue;
        }
        code.push((i + 1, strip_trailing_comment(line).to_owned()));
    }
    code
}

/// `line` without a trailing `// comment` (one outside string and `'"'` literals).
fn strip_trailing_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut chars = line.char_indices();
    while let Some((i, c)) = chars.next() {
        let rest = &line[i..];
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '\'' if !in_string && rest.starts_with("'\"'") => {
                chars.nth(1);
            }
            '/' if !in_string && rest.starts_with("//") => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The first name after each `crate::` in the code, with its line: `crate::a::b` gives `a`,
/// `use crate::{a::b, c::{d, e}}` gives `a` and `c`.
fn crate_paths(code: &[(usize, String)]) -> Vec<(usize, String)> {
    // One string, each character with its line number.
    let mut text = String::new();
    let mut line_at = Vec::new();
    for (number, line) in code {
        for c in line.chars().chain(['\n']) {
            text.push(c);
            line_at.resize(text.len(), *number);
        }
    }
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("crate::").map(|i| from + i) {
        from = start + "crate::".len();
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `other_crate::`, or a macro's `$crate::`.
        }
        if text[from..].starts_with('{') {
            let mut depth = 0;
            let mut segment_start = from + 1;
            for (i, c) in text[from..].char_indices() {
                let at = from + i;
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let name = first_name(&text[segment_start..at]);
                        if !name.is_empty() {
                            found.push((
                                line_at[segment_start + leading_space(&text[segment_start..at])],
                                name,
                            ));
                        }
                        segment_start = at + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            let name = first_name(&text[from..]);
            if !name.is_empty() {
                found.push((line_at[from], name));
            }
        }
    }
    found
}

/// The leading identifier of a path, after any whitespace.
fn first_name(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The length of the whitespace `s` begins with.
fn leading_space(s: &str) -> usize {
    s.len() - s.trim_start().len()
}
